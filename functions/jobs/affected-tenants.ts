import { and, eq, ne, sql } from "drizzle-orm";
import { tenants } from "../../db/schema/region";
import type { RegionHandle } from "../../db/store";
import { orderAllowedRegions } from "../policy/tenant-placement";
import type { Platform } from "../services/context";

export type TenantRow = typeof tenants.$inferSelect;

export interface AffectedTenant {
	tenant: TenantRow;
	/** The tenant's home region: where its DNS rows and audit chain live. */
	home: RegionHandle;
}

export interface NodeRef {
	id: string;
	regionId: string;
	dedicatedTenantId: string | null;
}

/**
 * Tenants whose traffic a node may carry: those allowed in the node's region (or, for a
 * dedicated node, its one tenant). Each region's database is asked about its own tenants only.
 */
export async function tenantsAffectedBy(
	platform: Pick<Platform, "store">,
	node: NodeRef,
): Promise<AffectedTenant[]> {
	const out: AffectedTenant[] = [];
	for (const home of platform.store.regions()) {
		const rows = await home.db
			.select()
			.from(tenants)
			.where(
				and(
					ne(tenants.status, "deleted"),
					node.dedicatedTenantId ? eq(tenants.id, node.dedicatedTenantId) : undefined,
					sql`exists (select 1 from json_each(${tenants.allowedRegions}) where value = ${node.regionId})`,
				),
			)
			.orderBy(tenants.id);
		for (const tenant of rows) out.push({ tenant, home });
	}
	return out;
}

/**
 * The regions a tenant's DNS may point into, in failover order: home first, then the home
 * region's configured backups, then the rest. Only configured regions; for a sovereign tenant
 * only those of its home jurisdiction, whatever its stored list says (the edge does the same).
 */
export function residencyRegions(platform: Pick<Platform, "config" | "store">, tenant: TenantRow) {
	const ordered = orderAllowedRegions(platform.config, tenant.homeRegion, tenant.allowedRegions);
	const homeJurisdiction = platform.store.hasRegion(tenant.homeRegion)
		? platform.store.region(tenant.homeRegion).jurisdiction
		: undefined;
	return ordered.filter(
		(id) =>
			platform.store.hasRegion(id) &&
			tenant.allowedRegions.includes(id) &&
			(tenant.profile !== "sovereign" ||
				platform.store.region(id).jurisdiction === homeJurisdiction),
	);
}
