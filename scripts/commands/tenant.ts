import { activateTenant } from "../../functions/services/activate-tenant";
import { createTenant, listTenants } from "../../functions/services/tenants";
import { type CommandIo, parseFlags, withPlatform } from "../lib/cli";

/**
 * `castellan tenant create`: creates the tenant, issues its certificate and activates its
 * route in one go (the provisioning webhooks do the same without a human).
 */
export async function tenantCreate(args: string[], io: CommandIo): Promise<number> {
	const flags = parseFlags(args, {
		slug: { type: "string" },
		region: { type: "string" },
		profile: { type: "string" },
		id: { type: "string" },
		"allowed-regions": { type: "string" },
	});
	return withPlatform(flags.config, io, async (platform) => {
		const ctx = { platform, actor: "cli" };
		const tenant = await createTenant({
			ctx,
			input: {
				id: flags.id,
				slug: flags.slug,
				profile: flags.profile,
				homeRegion: flags.region,
				allowedRegions: flags["allowed-regions"]?.split(",").map((s) => s.trim()),
			},
		});
		const { hostname } = await activateTenant({ ctx, input: { id: tenant.id } });
		io.out(JSON.stringify({ ...tenant, status: "active", hostnames: [hostname] }));
		return 0;
	});
}

export async function tenantList(args: string[], io: CommandIo): Promise<number> {
	const flags = parseFlags(args, {});
	return withPlatform(flags.config, io, async (platform) => {
		for (const t of await listTenants({ ctx: { platform, actor: "cli" } })) {
			io.out(
				`${t.id}\t${t.slug}\t${t.profile}\t${t.homeRegion}\t${t.status}\t${t.hostnames.join(",")}`,
			);
		}
		return 0;
	});
}
