import { appendAuditEvent, PLATFORM_CHAIN } from "../../functions/audit/audit-chain";
import { masterKeySource } from "../../functions/config/schema";
import { addKeyToFile, loadMasterKeyring, retireOldKeys } from "../../functions/node/master-key";
import { rewrapAll } from "../../functions/secrets/rotate";
import { CliError, type CommandIo, parseFlags, withPlatform } from "../lib/cli";

/**
 * `castellan keys rotate`: re-encrypts every stored secret to the current (first) master key.
 * `--generate` first adds a new key to the key file; `--retire` drops the old keys from the
 * file once nothing needs them. With an env key source, put the new key first in the variable.
 */
export async function keysRotate(args: string[], io: CommandIo): Promise<number> {
	const flags = parseFlags(args, { generate: { type: "boolean" }, retire: { type: "boolean" } });
	return withPlatform(flags.config, io, async (platform) => {
		const source = masterKeySource(platform.config);
		if ((flags.generate || flags.retire) && !("file" in source)) {
			throw new CliError([
				`--generate and --retire work on a key file; this deployment reads its keys from $${source.env}: put the new key first there and run keys rotate`,
			]);
		}
		if (flags.generate && "file" in source) {
			const { kid } = await addKeyToFile(source.file);
			io.out(`added master key ${kid} to ${source.file} as the current key`);
		}
		const { keyring } = await loadMasterKeyring(source, io.env, { createIfMissing: false });
		const counts = await rewrapAll(platform.store, keyring);
		for (const c of counts) {
			io.out(`${c.region}: ${c.rewrapped} re-encrypted, ${c.alreadyCurrent} already current`);
			await platform.store.region(c.region).db.transaction((tx) =>
				appendAuditEvent(
					tx,
					{
						chain: PLATFORM_CHAIN,
						actor: "cli",
						action: "master_key.rotated",
						subject: c.region,
						data: { currentKeyId: keyring.current.kid, rewrapped: c.rewrapped },
					},
					{ clock: platform.clock },
				),
			);
		}
		if (flags.retire && "file" in source) {
			const { kept, retired } = await retireOldKeys(source.file);
			io.out(`kept ${kept}; retired ${retired.length ? retired.join(", ") : "nothing"}`);
		}
		return 0;
	});
}
