import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultConfig } from "../../functions/config/default-config";
import { createNodeRegistry } from "../../functions/node/node-registry";
import { type OpenPlatform, openPlatform } from "../../functions/node/open-platform";
import { checkConfig } from "../../functions/policy/check-config";
import { formatViolation } from "../../functions/policy/violations";
import type { Clock } from "../../functions/runtime";
import type { Platform } from "../../functions/services/context";

export interface TestPlatform {
	platform: OpenPlatform;
	dir: string;
	close(): void;
}

/**
 * The real platform (real libSQL files, real master key file, real providers) on the built-in
 * default config, rooted in a fresh temporary directory. `edit` may change the document first.
 */
export async function createTestPlatform(
	options: {
		edit?: (doc: ReturnType<typeof defaultConfig>) => void;
		clock?: Clock;
		dir?: string;
		env?: Record<string, string>;
		resolver?: Platform["resolver"];
	} = {},
): Promise<TestPlatform> {
	const dir = options.dir ?? mkdtempSync(join(tmpdir(), "castellan-platform-"));
	const doc = defaultConfig(dir);
	options.edit?.(doc);
	const checked = checkConfig(doc, createNodeRegistry());
	if (!checked.ok) throw new Error(checked.violations.map(formatViolation).join("\n"));
	const platform = await openPlatform({
		config: checked.config,
		env: options.env ?? {},
		migrate: true,
		clock: options.clock,
		resolver: options.resolver,
	});
	return {
		platform,
		dir,
		close() {
			platform.close();
			if (!options.dir) rmSync(dir, { recursive: true, force: true });
		},
	};
}
