import { type CommandIo, parseFlags, withPlatform } from "../lib/cli";

/** `castellan migrate`: applies the committed migrations to the catalog and every region. */
export async function migrateCommand(args: string[], io: CommandIo): Promise<number> {
	const flags = parseFlags(args, {});
	await withPlatform(
		flags.config,
		io,
		async (platform) => {
			io.out(`migrated catalog and ${platform.store.regions().length} regions`);
		},
		{ migrate: true },
	);
	return 0;
}
