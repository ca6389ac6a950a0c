import { formatAuditVerification, verifyAuditChains } from "../../functions/audit/verify-audit";
import { CliError, type CommandIo, parseFlags, withPlatform } from "../lib/cli";

/** `castellan audit verify [--region R] [--chain C]`: exit 0 when every chain is intact, else 1. */
export async function auditVerify(args: string[], io: CommandIo): Promise<number> {
	const flags = parseFlags(args, { region: { type: "string" }, chain: { type: "string" } });
	return withPlatform(flags.config, io, async (platform) => {
		if (flags.region && !platform.store.hasRegion(flags.region)) {
			throw new CliError([`unknown region "${flags.region}"`], 2);
		}
		const regions = flags.region ? [platform.store.region(flags.region)] : platform.store.regions();
		let intact = true;
		for (const region of regions) {
			const result = await verifyAuditChains(region.db, flags.chain ? { chain: flags.chain } : {});
			const line = `${region.id}: ${formatAuditVerification(result)}`;
			if (result.ok) io.out(line);
			else {
				intact = false;
				io.err(line);
			}
		}
		return intact ? 0 : 1;
	});
}
