import type { Readable } from "node:stream";
import { Miniflare } from "miniflare";
import type { WorkerBundle } from "./wrangler-bundle";

export interface WorkerdInstance {
	mf: Miniflare;
	/** Where workerd listens on loopback: requests go there as real HTTP. */
	url: URL;
	/** What the worker wrote with console.log, one entry per line. */
	logs: string[];
	dispose(): Promise<void>;
}

/**
 * Runs a wrangler bundle in workerd with the given bindings. Outbound fetch to 127.0.0.1
 * works as is: miniflare's default network service allows private addresses.
 */
export async function runInWorkerd(
	bundle: WorkerBundle,
	options: { bindings?: Record<string, string>; kvNamespaces?: string[] } = {},
): Promise<WorkerdInstance> {
	const logs: string[] = [];
	const collect = (stream: Readable) => {
		let rest = "";
		stream.on("data", (chunk: Buffer) => {
			const lines = (rest + chunk.toString()).split("\n");
			rest = lines.pop() ?? "";
			for (const line of lines) if (line.trim()) logs.push(line);
		});
	};
	const mf = new Miniflare({
		modules: true,
		modulesRoot: bundle.dir,
		scriptPath: bundle.scriptPath,
		compatibilityDate: bundle.compatibilityDate,
		compatibilityFlags: bundle.compatibilityFlags,
		kvNamespaces: options.kvNamespaces ?? [],
		bindings: options.bindings ?? {},
		// Keeps the test output clean and lets tests read what the worker logged.
		handleRuntimeStdio(stdout: Readable, stderr: Readable) {
			collect(stdout);
			collect(stderr);
		},
	});
	const url = await mf.ready;
	return { mf, url, logs, dispose: () => mf.dispose() };
}
