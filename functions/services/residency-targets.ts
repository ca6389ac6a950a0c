import type { HealthState } from "../../db/schema/region";
import { nodes } from "../../db/schema/region";
import type { Platform } from "./context";

export interface ResidentTenant {
	id: string;
	allowedRegions: string[];
}

export interface ResidentTargets {
	/** The region whose nodes were chosen: the first allowed region with an eligible node. */
	regionId: string;
	ipv4: string[];
	ipv6: string[];
}

/**
 * Where a tenant's DNS should point: the eligible nodes of its first allowed region (home
 * first, then backups in order) that has any. Only regions the tenant is allowed in are
 * read, so no address outside its residency can be returned. Undefined when none is left.
 */
export async function residentTargets(
	platform: Pick<Platform, "store">,
	tenant: ResidentTenant,
	isEligible: (state: HealthState) => boolean = (state) => state !== "unhealthy",
): Promise<ResidentTargets | undefined> {
	for (const regionId of tenant.allowedRegions) {
		if (!platform.store.hasRegion(regionId)) continue;
		const rows = await platform.store.region(regionId).db.select().from(nodes);
		const usable = rows.filter(
			(n) =>
				n.regionId === regionId &&
				isEligible(n.state) &&
				(!n.dedicatedTenantId || n.dedicatedTenantId === tenant.id),
		);
		const ipv4 = unique(
			usable.map((n) => n.address).filter((a) => /^\d{1,3}(\.\d{1,3}){3}$/.test(a)),
		);
		const ipv6 = unique(usable.map((n) => n.address).filter((a) => a.includes(":")));
		if (ipv4.length + ipv6.length > 0) return { regionId, ipv4, ipv6 };
	}
	return undefined;
}

function unique(values: string[]): string[] {
	return [...new Set(values)].sort();
}
