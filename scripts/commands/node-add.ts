import { registerNode } from "../../functions/services/nodes";
import { type CommandIo, parseFlags, withPlatform } from "../lib/cli";

/**
 * `castellan node add --region R --name N --address IP --instance URL [--instance URL]
 * [--health-url URL] [--dedicated-tenant T]`: registers (or replaces) a data-plane node.
 */
export async function nodeAdd(args: string[], io: CommandIo): Promise<number> {
	const flags = parseFlags(args, {
		region: { type: "string" },
		name: { type: "string" },
		address: { type: "string" },
		instance: { type: "string", multiple: true },
		"health-url": { type: "string" },
		"dedicated-tenant": { type: "string" },
	});
	return withPlatform(flags.config, io, async (platform) => {
		const { nodeId } = await registerNode({
			ctx: { platform, actor: "cli" },
			input: {
				regionId: flags.region,
				name: flags.name,
				address: flags.address,
				instanceUrls: flags.instance ?? [],
				healthUrl: flags["health-url"],
				dedicatedTenantId: flags["dedicated-tenant"],
			},
		});
		io.out(nodeId);
		return 0;
	});
}
