import { type ParseArgsConfig, parseArgs } from "node:util";
import type { CastellanConfig } from "../../functions/config/schema";
import { readConfigDocument } from "../../functions/node/load-config";
import { createNodeRegistry } from "../../functions/node/node-registry";
import { isEmbedded, type OpenPlatform, openPlatform } from "../../functions/node/open-platform";
import { checkConfig } from "../../functions/policy/check-config";
import { formatViolation } from "../../functions/policy/violations";
import type { Logger } from "../../functions/runtime";

export interface CommandIo {
	out(line: string): void;
	err(line: string): void;
	env: Record<string, string | undefined>;
	cwd: string;
}

/** An expected failure: its lines are printed as they are, and the process exits with the code. */
export class CliError extends Error {
	constructor(
		readonly lines: string[],
		readonly exitCode = 1,
	) {
		super(lines.join("\n"));
	}
}

export function parseFlags<T extends NonNullable<ParseArgsConfig["options"]>>(
	args: string[],
	options: T,
) {
	try {
		return parseArgs({
			args,
			options: { config: { type: "string" }, ...options },
			strict: true,
			allowPositionals: false,
		}).values;
	} catch (err) {
		throw new CliError([(err as Error).message], 2);
	}
}

/** Reads and checks the configuration; on any violation throws with one `<path>: <rule>` line each. */
export function loadConfig(
	configFlag: string | undefined,
	io: CommandIo,
): { config: CastellanConfig; source: string; isDefault: boolean } {
	let doc: ReturnType<typeof readConfigDocument>;
	try {
		doc = readConfigDocument(configFlag, io.env, io.cwd);
	} catch (err) {
		throw new CliError([(err as Error).message]);
	}
	const result = checkConfig(doc.document, createNodeRegistry());
	if (!result.ok) throw new CliError(result.violations.map(formatViolation));
	return { config: result.config, source: doc.source, isDefault: doc.isDefault };
}

/** Opens the platform, turning a wrong key or an unreachable database into a one-line error. */
export async function openPlatformFor(
	config: CastellanConfig,
	io: CommandIo,
	opts: { migrate: boolean; logger?: Logger },
): Promise<OpenPlatform> {
	try {
		return await openPlatform({ config, env: io.env, migrate: opts.migrate, logger: opts.logger });
	} catch (err) {
		throw new CliError([(err as Error).message]);
	}
}

/** Config + platform for commands that work on the store; migrations applied on embedded files. */
export async function withPlatform<T>(
	configFlag: string | undefined,
	io: CommandIo,
	run: (platform: OpenPlatform) => Promise<T>,
	opts: { migrate?: boolean } = {},
): Promise<T> {
	const { config } = loadConfig(configFlag, io);
	const platform = await openPlatformFor(config, io, {
		migrate: opts.migrate ?? isEmbedded(config),
	});
	try {
		return await run(platform);
	} finally {
		platform.close();
	}
}
