import type { CastellanConfig, ProfileName } from "../config/schema";
import type { Violation } from "./violations";

export interface TenantPlacement {
	profile: ProfileName;
	homeRegion: string;
	/** Regions the tenant may be served from; defaults to the home region alone. */
	allowedRegions?: string[] | undefined;
}

/**
 * Where a tenant may live and be served from. Sovereign tenants stay inside the home region's
 * jurisdiction; every tenant's allowed regions must exist and include its home region.
 */
export function checkTenantPlacement(config: CastellanConfig, input: TenantPlacement): Violation[] {
	const out: Violation[] = [];
	const byId = new Map(config.regions.map((r) => [r.id, r]));
	if (!config.profiles[input.profile]) {
		out.push({
			path: "$.profile",
			rule: `profile "${input.profile}" is not enabled in this deployment`,
		});
	}
	const home = byId.get(input.homeRegion);
	if (!home) {
		out.push({
			path: "$.homeRegion",
			rule: `unknown region "${input.homeRegion}" (known: ${[...byId.keys()].join(", ")})`,
		});
		return out;
	}
	const allowed = input.allowedRegions ?? [input.homeRegion];
	if (!allowed.includes(input.homeRegion)) {
		out.push({
			path: "$.allowedRegions",
			rule: `must include the home region "${input.homeRegion}"`,
		});
	}
	allowed.forEach((id, i) => {
		const region = byId.get(id);
		if (!region) {
			out.push({ path: `$.allowedRegions[${i}]`, rule: `unknown region "${id}"` });
		} else if (input.profile === "sovereign" && region.jurisdiction !== home.jurisdiction) {
			out.push({
				path: `$.allowedRegions[${i}]`,
				rule: `sovereign tenant homed in ${home.id} (jurisdiction ${home.jurisdiction}) may not be served from ${id} (jurisdiction ${region.jurisdiction})`,
			});
		}
		if (allowed.indexOf(id) !== i)
			out.push({ path: `$.allowedRegions[${i}]`, rule: `duplicate region "${id}"` });
	});
	return out;
}

/** Allowed regions in failover order: home first, then the home region's backups, then the rest. */
export function orderAllowedRegions(
	config: CastellanConfig,
	homeRegion: string,
	allowed: string[],
): string[] {
	const backups = config.regions.find((r) => r.id === homeRegion)?.backupRegions ?? [];
	const order = [homeRegion, ...backups.filter((b) => allowed.includes(b))];
	for (const id of allowed) if (!order.includes(id)) order.push(id);
	return order;
}
