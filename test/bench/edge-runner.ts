/**
 * The Castellan Node edge in a process of its own, so wrk's load does not share the harness's
 * event loop and the edge's memory can be read alone. Started by edge.bench.ts as
 * `node --import tsx test/bench/edge-runner.ts <platform dir>` (or `--baseline`).
 *
 * Protocol: one JSON object per line on stdout. First `{"ready": ...}`; then, for each line on
 * stdin: "memory" -> `{"memory": ...}`; "profile-start" -> `{"profiling": true}`;
 * "profile-stop <file>" -> `{"profile": "<file>"}` (a V8 CPU profile of exactly the span between
 * the two, e.g. one measured wrk run, without start-up or idle waits); "stop" -> clean exit.
 */
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { createInterface } from "node:readline";

export interface RunnerMemory {
	rssMb: number;
	heapUsedMb: number;
	heapTotalMb: number;
	externalMb: number;
	arrayBuffersMb: number;
}

export interface RunnerReady {
	ready: true;
	httpsPort: number;
	hosts: number;
	/** From the start of the platform open to the edge listening with every route loaded. */
	loadMs: number;
	memory: RunnerMemory;
}

function memory(): RunnerMemory {
	// Only garbage-collected figures are comparable between runs (--expose-gc is passed).
	(globalThis as { gc?: () => void }).gc?.();
	const m = process.memoryUsage();
	const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;
	return {
		rssMb: mb(m.rss),
		heapUsedMb: mb(m.heapUsed),
		heapTotalMb: mb(m.heapTotal),
		externalMb: mb(m.external),
		arrayBuffersMb: mb(m.arrayBuffers),
	};
}

function send(message: object): void {
	process.stdout.write(`${JSON.stringify(message)}\n`);
}

async function main(): Promise<void> {
	const arg = process.argv[2];
	if (!arg) throw new Error("usage: edge-runner.ts <platform dir> | --baseline");
	let stop: () => Promise<void> = async () => {};
	if (arg === "--baseline") {
		// The floor every figure includes: node and tsx's loader thread, no Castellan code.
		send({ ready: true, httpsPort: 0, hosts: 0, loadMs: 0, memory: memory() });
	} else {
		const started = performance.now();
		// Imported here, not at the top, so the baseline process loads none of this code.
		const { startNodeEdge } = await import("../../edge/node/start-node-edge");
		const { createTestPlatform } = await import("../helpers/test-platform");
		const t = await createTestPlatform({ dir: arg });
		const edge = await startNodeEdge({
			store: t.platform.store,
			secrets: t.platform.secrets,
			httpsPort: 0,
			httpPort: 0,
			host: "127.0.0.1",
		});
		const loadMs = Math.round(performance.now() - started);
		stop = async () => {
			await edge.close();
			t.close();
		};
		const ready: RunnerReady = {
			ready: true,
			httpsPort: edge.httpsPort,
			hosts: edge.table().size,
			loadMs,
			memory: memory(),
		};
		send(ready);
	}
	let profiler: Session | undefined;
	for await (const line of createInterface({ input: process.stdin })) {
		if (line === "memory") send({ memory: memory() });
		if (line === "profile-start") {
			profiler = new Session();
			profiler.connect();
			await profiler.post("Profiler.enable");
			await profiler.post("Profiler.start");
			send({ profiling: true });
		}
		if (line.startsWith("profile-stop ") && profiler) {
			const file = line.slice("profile-stop ".length);
			const { profile } = await profiler.post("Profiler.stop");
			writeFileSync(file, JSON.stringify(profile));
			profiler.disconnect();
			profiler = undefined;
			send({ profile: file });
		}
		if (line === "stop") break;
	}
	await stop();
	process.exit(0);
}

main().catch((err) => {
	process.stderr.write(`edge runner failed: ${err instanceof Error ? err.stack : String(err)}\n`);
	process.exit(1);
});
