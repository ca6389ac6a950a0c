import { type CommandIo, loadConfig, parseFlags } from "../lib/cli";

/** `castellan config check`: exit 0 when valid, 1 with one `<path>: <rule>` line per violation. */
export async function configCheck(args: string[], io: CommandIo): Promise<number> {
	const flags = parseFlags(args, {});
	const { config, source } = loadConfig(flags.config, io);
	io.out(
		`config ok (${source}): ${config.regions.length} regions, ${Object.keys(config.providers).length} providers, profiles ${Object.keys(config.profiles).join(", ")}`,
	);
	return 0;
}
