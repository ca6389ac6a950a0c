import { normalizeServerName } from "./host-name";
import type { RouteSnapshot, SnapshotHost, SnapshotInstance } from "./route-snapshot";

/** What the edge knows about the tenant behind a hostname. */
export interface TenantRoute {
	tenantId: string;
	status: SnapshotHost["status"];
	/**
	 * Healthy instances this tenant may use, one group per allowed region in failover order
	 * (empty groups dropped). Residency is applied here, once, when the table is built.
	 */
	tiers: readonly (readonly SnapshotInstance[])[];
}

/** An immutable, in-memory route table: every lookup is one Map get, whatever the host count. */
export class RouteTable {
	readonly #hosts: Map<string, TenantRoute>;
	readonly #instances: Map<string, SnapshotInstance>;

	constructor(
		readonly version: string,
		hosts: Map<string, TenantRoute>,
		instances: Map<string, SnapshotInstance>,
		/** Snapshot hostnames dropped because they are not valid DNS names. */
		readonly skippedHosts: readonly string[] = [],
	) {
		this.#hosts = hosts;
		this.#instances = instances;
	}

	/** The route of a normalised hostname (see `parseHost`). */
	lookup(hostname: string): TenantRoute | undefined {
		return this.#hosts.get(hostname);
	}

	instance(id: string): SnapshotInstance | undefined {
		return this.#instances.get(id);
	}

	instances(): IterableIterator<SnapshotInstance> {
		return this.#instances.values();
	}

	get size(): number {
		return this.#hosts.size;
	}
}

/**
 * Builds the table. An instance is eligible for a tenant when its region is one of the tenant's
 * allowed regions AND its jurisdiction one of the allowed jurisdictions. A tenant with
 * dedicated nodes is served by them alone (its own segment); a dedicated node never serves
 * another tenant. Tenants sharing a placement share one tier list, so 100,000 hosts stay small.
 */
export function buildRouteTable(snapshot: RouteSnapshot): RouteTable {
	const instances = new Map(snapshot.instances.map((i) => [i.id, i]));
	const healthyShared = new Map<string, SnapshotInstance[]>();
	const dedicated = new Map<string, SnapshotInstance[]>();
	for (const instance of snapshot.instances) {
		if (instance.dedicatedTenantId) push(dedicated, instance.dedicatedTenantId, instance);
		else if (instance.healthy) push(healthyShared, instance.regionId, instance);
	}

	const sharedTiers = new Map<string, TenantRoute["tiers"]>();
	const hosts = new Map<string, TenantRoute>();
	const skipped: string[] = [];
	// Consecutive hosts usually share a placement (the loader groups them): skip the key lookup.
	let lastPlacement:
		| { regions: string[]; jurisdictions: string[]; tiers: TenantRoute["tiers"] }
		| undefined;
	for (const host of snapshot.hosts) {
		const hostname = normalizeServerName(host.hostname);
		if (!hostname) {
			skipped.push(host.hostname);
			continue;
		}
		const own = dedicated.get(host.tenantId);
		let tiers: TenantRoute["tiers"];
		if (own) {
			tiers = tiersFor(host, (regionId) => own.filter((i) => i.healthy && i.regionId === regionId));
		} else if (
			lastPlacement &&
			lastPlacement.regions === host.allowedRegions &&
			lastPlacement.jurisdictions === host.allowedJurisdictions
		) {
			tiers = lastPlacement.tiers;
		} else {
			const key = `${host.allowedRegions.join(",")}|${host.allowedJurisdictions.join(",")}`;
			tiers =
				sharedTiers.get(key) ?? tiersFor(host, (regionId) => healthyShared.get(regionId) ?? []);
			sharedTiers.set(key, tiers);
			lastPlacement = {
				regions: host.allowedRegions,
				jurisdictions: host.allowedJurisdictions,
				tiers,
			};
		}
		hosts.set(hostname, { tenantId: host.tenantId, status: host.status, tiers });
	}
	return new RouteTable(snapshot.version, hosts, instances, skipped);
}

function tiersFor(
	host: SnapshotHost,
	inRegion: (regionId: string) => readonly SnapshotInstance[],
): SnapshotInstance[][] {
	const tiers: SnapshotInstance[][] = [];
	for (const regionId of new Set(host.allowedRegions)) {
		// The jurisdiction check is redundant with a correct region list; it is the residency guard.
		const tier = inRegion(regionId).filter((i) =>
			host.allowedJurisdictions.includes(i.jurisdiction),
		);
		if (tier.length > 0) tiers.push(tier);
	}
	return tiers;
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
	const list = map.get(key);
	if (list) list.push(value);
	else map.set(key, [value]);
}
