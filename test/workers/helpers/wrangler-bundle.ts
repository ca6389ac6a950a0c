import { execFile } from "node:child_process";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const repoRoot = fileURLToPath(new URL("../../..", import.meta.url));
const wranglerBin = join(repoRoot, "node_modules", "wrangler", "bin", "wrangler.js");

export interface WorkerBundle {
	/** The wrangler environment bundled ("edge"), undefined for the top-level worker. */
	env: string | undefined;
	dir: string;
	scriptPath: string;
	/** Size of the bundled script, as uploaded (before gzip). */
	bytes: number;
	/** Wall time of the wrangler run. */
	ms: number;
	compatibilityDate: string;
	compatibilityFlags: string[];
	remove(): Promise<void>;
}

/**
 * Bundles a worker exactly as `wrangler deploy` would, offline (`--dry-run --outdir`), so the
 * tests run the production bundle in workerd rather than the sources.
 */
export async function bundleWorker(env?: string): Promise<WorkerBundle> {
	const dir = await mkdtemp(join(tmpdir(), "castellan-wrangler-"));
	// The config is named explicitly: wrangler otherwise takes the first wrangler.json it finds
	// in any parent directory before this repository's wrangler.toml.
	const args = [
		wranglerBin,
		"deploy",
		"--dry-run",
		"--outdir",
		dir,
		"--config",
		join(repoRoot, "wrangler.toml"),
	];
	if (env) args.push("--env", env);
	const started = performance.now();
	try {
		await run(process.execPath, args, {
			cwd: repoRoot,
			env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1", NO_COLOR: "1" },
			maxBuffer: 16 * 1024 * 1024,
		});
	} catch (err) {
		await rm(dir, { recursive: true, force: true });
		const output = err as { stdout?: string; stderr?: string };
		throw new Error(
			`wrangler deploy --dry-run failed:\n${output.stdout ?? ""}${output.stderr ?? ""}`,
		);
	}
	const ms = performance.now() - started;
	const scriptPath = join(dir, "worker.js");
	const { compatibilityDate, compatibilityFlags } = await readCompatibility(env);
	return {
		env,
		dir,
		scriptPath,
		bytes: (await stat(scriptPath)).size,
		ms,
		compatibilityDate,
		compatibilityFlags,
		remove: () => rm(dir, { recursive: true, force: true }),
	};
}

/** The compatibility settings wrangler would deploy with, read by wrangler itself. */
async function readCompatibility(
	env: string | undefined,
): Promise<{ compatibilityDate: string; compatibilityFlags: string[] }> {
	const { unstable_readConfig } = await import("wrangler");
	const config = unstable_readConfig(
		{ config: join(repoRoot, "wrangler.toml"), env },
		{ hideWarnings: true },
	);
	if (!config.compatibility_date) throw new Error("wrangler.toml has no compatibility_date");
	return {
		compatibilityDate: config.compatibility_date,
		compatibilityFlags: config.compatibility_flags ?? [],
	};
}
