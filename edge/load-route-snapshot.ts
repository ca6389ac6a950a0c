import { sql } from "drizzle-orm";
import { readRouteVersion } from "../db/route-version";
import { instances, nodes, routes, type TenantStatus, tenants } from "../db/schema/region";
import type { ControlStore, RegionHandle } from "../db/store";
import type { RouteSnapshot, SnapshotHost, SnapshotInstance } from "./core/route-snapshot";

type TenantProfile = "standard" | "sovereign" | "byo";

/** Every region's route version, e.g. "eu-central:12,us-east:4"; it changes when any region's does. */
export async function readCombinedRouteVersion(store: ControlStore): Promise<string> {
	return combineVersions(await readVersions(store));
}

/** Reads routes, tenants, nodes and instances from every region into one RouteSnapshot. */
export function loadRouteSnapshot(store: ControlStore): Promise<RouteSnapshot> {
	return new RouteSnapshotLoader(store).load();
}

interface RegionPart {
	version: number;
	hosts: SnapshotHost[];
	instances: SnapshotInstance[];
}

/**
 * Loads snapshots again and again, re-reading only the regions whose route version moved
 * since the previous load: a change in one region does not pay for the others' routes.
 */
export class RouteSnapshotLoader {
	readonly #parts = new Map<string, RegionPart>();

	constructor(private readonly store: ControlStore) {}

	/** `fresh` re-reads every region, changed or not. */
	async load(options: { fresh?: boolean } = {}): Promise<RouteSnapshot> {
		if (options.fresh) this.#parts.clear();
		// Versions are read BEFORE the rows: a change racing the load shows up as a new version next time.
		const versions = await readVersions(this.store);
		const regions = this.store.regions();
		const jurisdictionOf = new Map(regions.map((r) => [r.id, r.jurisdiction]));
		const parts = await Promise.all(
			regions.map(async (region) => {
				const version = versions.get(region.id) ?? 0;
				const known = this.#parts.get(region.id);
				if (known && known.version === version) return known;
				const part = { version, ...(await readRegion(region, jurisdictionOf)) };
				this.#parts.set(region.id, part);
				return part;
			}),
		);
		return {
			version: combineVersions(versions),
			hosts: parts.length === 1 ? parts[0]!.hosts : parts.flatMap((p) => p.hosts),
			instances: parts.flatMap((p) => p.instances),
		};
	}
}

async function readVersions(store: ControlStore): Promise<Map<string, number>> {
	const entries = await Promise.all(
		store.regions().map(async (r) => [r.id, await readRouteVersion(r.db)] as const),
	);
	return new Map(entries);
}

function combineVersions(versions: ReadonlyMap<string, number>): string {
	return [...versions].map(([id, version]) => `${id}:${version}`).join(",");
}

async function readRegion(
	region: RegionHandle,
	jurisdictionOf: ReadonlyMap<string, string>,
): Promise<{ hosts: SnapshotHost[]; instances: SnapshotInstance[] }> {
	// Routes grow to 100,000s of rows. SQLite joins them to their tenant (a tenant's rows live
	// only in its home region, so a route without its tenant here is dropped), groups them by
	// placement, and returns each group's routes as one JSON text: far cheaper to parse than
	// as many row objects.
	const [groups, nodeRows, instanceRows] = await Promise.all([
		region.db.all<{
			status: TenantStatus;
			profile: TenantProfile;
			homeRegion: string;
			allowedRegions: string;
			hosts: string;
		}>(sql`
			select t.status as status, t.profile as profile, t.home_region as homeRegion,
				t.allowed_regions as allowedRegions,
				json_group_array(json_array(r.hostname, r.tenant_id, r.certificate_id)) as hosts
			from ${routes} r join ${tenants} t on t.id = r.tenant_id
			group by t.status, t.profile, t.home_region, t.allowed_regions`),
		region.db
			.select({
				id: nodes.id,
				regionId: nodes.regionId,
				dedicatedTenantId: nodes.dedicatedTenantId,
				state: nodes.state,
			})
			.from(nodes),
		region.db
			.select({ id: instances.id, nodeId: instances.nodeId, url: instances.url })
			.from(instances)
			.orderBy(instances.id),
	]);

	const hosts: SnapshotHost[] = [];
	for (const group of groups) {
		const listed = parseRegionList(group.allowedRegions);
		const allowedRegions = (listed.length > 0 ? listed : [group.homeRegion]).filter((r) =>
			jurisdictionOf.has(r),
		);
		const home = jurisdictionOf.get(group.homeRegion);
		// A sovereign tenant's traffic stays in its home jurisdiction whatever its region list says.
		const allowedJurisdictions =
			group.profile === "sovereign"
				? home
					? [home]
					: []
				: [...new Set(allowedRegions.map((r) => jurisdictionOf.get(r)!))];
		const rows = JSON.parse(group.hosts) as Array<[string, string, string | null]>;
		for (const [hostname, tenantId, certificateId] of rows) {
			hosts.push({
				hostname,
				tenantId,
				status: group.status,
				allowedRegions,
				allowedJurisdictions,
				certificateId: certificateId ?? undefined,
			});
		}
	}

	const nodeById = new Map(nodeRows.map((n) => [n.id, n]));
	const out: SnapshotInstance[] = [];
	for (const i of instanceRows) {
		const node = nodeById.get(i.nodeId);
		// A node row claiming another region is inconsistent; it must not lend that region's jurisdiction.
		if (!node || node.regionId !== region.id) continue;
		out.push({
			id: i.id,
			nodeId: node.id,
			regionId: region.id,
			jurisdiction: region.jurisdiction,
			url: i.url,
			healthy: node.state !== "unhealthy",
			dedicatedTenantId: node.dedicatedTenantId ?? undefined,
		});
	}
	return { hosts, instances: out };
}

/** A tenant's allowed regions; a malformed value counts as none (the home region alone). */
function parseRegionList(text: string): string[] {
	try {
		const value: unknown = JSON.parse(text);
		return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
	} catch {
		return [];
	}
}
