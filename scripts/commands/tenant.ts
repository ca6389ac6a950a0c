import { runJob } from "../../functions/services/provisioning/run-jobs";
import { createTenant, getTenant, listTenants } from "../../functions/services/tenants";
import { type CommandIo, parseFlags, withPlatform } from "../lib/cli";

/**
 * `castellan tenant create`: creates the tenant and runs its provisioning job at once (the
 * provisioning webhooks queue the same job without a human).
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
		// Provision right here (DNS, certificate, route), the same job the webhooks queue.
		const jobId = tenant.provisioning?.jobId;
		const region = platform.store.region(tenant.homeRegion);
		const outcome = jobId ? await runJob(platform, region, jobId, { holder: "cli" }) : undefined;
		const view = await getTenant({ ctx, input: { id: tenant.id } });
		io.out(JSON.stringify(view));
		if (outcome?.state !== "succeeded") {
			io.err(
				`provisioning did not finish: ${outcome?.lastError ?? "the job is held by another runner"}; it will be retried`,
			);
			return 1;
		}
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
