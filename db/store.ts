import type { Client } from "@libsql/client/web";
import { eq } from "drizzle-orm";
import {
	type CatalogDb,
	type CreateLibsqlClient,
	catalogDb,
	type DatabaseLocation,
	openLibsql,
	type RegionDb,
	regionDb,
} from "./client";
import { hostnames } from "./schema/catalog";

export interface RegionHandle {
	id: string;
	jurisdiction: string;
	db: RegionDb;
}

export interface StoreLocations {
	catalog: { url: string; authToken?: string | undefined };
	regions: Array<{ id: string; jurisdiction: string; url: string; authToken?: string | undefined }>;
}

/**
 * The control store: one catalog (hostname -> tenant, home region) and one database per region.
 * Every tenant-scoped read or write goes through `forTenant`/`region`, so it lands in the
 * tenant's home region and nowhere else.
 */
export class ControlStore {
	readonly #regions: Map<string, RegionHandle>;

	constructor(
		readonly catalog: CatalogDb,
		regions: RegionHandle[],
		private readonly clients: Client[] = [],
	) {
		this.#regions = new Map(regions.map((r) => [r.id, r]));
	}

	/** The handle of a configured region; throws on an unknown id. */
	region(id: string): RegionHandle {
		const handle = this.#regions.get(id);
		if (!handle) throw new UnknownRegionError(id);
		return handle;
	}

	hasRegion(id: string): boolean {
		return this.#regions.has(id);
	}

	regions(): RegionHandle[] {
		return [...this.#regions.values()];
	}

	/** The home region of a tenant, from the catalog's hostname index; undefined when unknown. */
	async locateTenant(tenantId: string): Promise<RegionHandle | undefined> {
		const [row] = await this.catalog
			.select({ regionId: hostnames.regionId })
			.from(hostnames)
			.where(eq(hostnames.tenantId, tenantId))
			.limit(1);
		return row ? this.#regions.get(row.regionId) : undefined;
	}

	async locateHostname(
		hostname: string,
	): Promise<{ tenantId: string; region: RegionHandle } | undefined> {
		const [row] = await this.catalog
			.select()
			.from(hostnames)
			.where(eq(hostnames.hostname, hostname))
			.limit(1);
		const region = row && this.#regions.get(row.regionId);
		return row && region ? { tenantId: row.tenantId, region } : undefined;
	}

	close(): void {
		for (const client of this.clients) client.close();
	}
}

export class UnknownRegionError extends Error {
	constructor(readonly regionId: string) {
		super(`unknown region "${regionId}"`);
		this.name = "UnknownRegionError";
	}
}

/** Opens the catalog and every region database, failing with the region and redacted URL. */
export async function openStore(
	createClient: CreateLibsqlClient,
	locations: StoreLocations,
): Promise<ControlStore> {
	const clients: Client[] = [];
	try {
		const open = async (loc: DatabaseLocation) => {
			const client = await openLibsql(createClient, loc);
			clients.push(client);
			return client;
		};
		const catalog = catalogDb(await open({ label: "catalog", ...locations.catalog }));
		const regions: RegionHandle[] = [];
		for (const r of locations.regions) {
			const client = await open({ label: `region ${r.id}`, url: r.url, authToken: r.authToken });
			regions.push({ id: r.id, jurisdiction: r.jurisdiction, db: regionDb(client) });
		}
		return new ControlStore(catalog, regions, clients);
	} catch (err) {
		for (const c of clients) c.close();
		throw err;
	}
}
