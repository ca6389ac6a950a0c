/**
 * `npm run bench:edge`: the Castellan Node edge against the origin alone, Caddy and nginx, on
 * one origin and one wrk workload, in one run; then the edge's memory with 100,000 routes.
 * Never part of `npm test` (DESIGN.md: benchmarks are measured side by side, not timed tests).
 *
 * Environment: BENCH_SECONDS (each measured run, default 10), BENCH_WARMUP_SECONDS (default 3),
 * BENCH_ROUNDS (every peer this many times, interleaved; default 1; the medians come from the
 * runs that other processes did not disturb, see CONTENDED_CORES),
 * BENCH_THREADS / BENCH_CONNECTIONS (wrk, default 2 / 64), BENCH_ROUTES (default 100000),
 * BENCH_WAIT_IDLE (seconds to wait before each run for the machine to be >= 90% idle; default 0,
 * busy runs are flagged either way), BENCH_RETRIES (how many times a run disturbed by other
 * processes is measured again, default 1), BENCH_CPU_PROF=1 (one more edge run under the V8 CPU
 * profiler, summarised; its figures are not reused), BENCH_KEEP=1 (keep the work directory).
 *
 * The last line of output is one JSON object with every figure.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { checkPeer, type TlsInfo } from "./edge-check";
import { EdgeChild } from "./edge-child";
import {
	ORIGIN_BODY,
	type RunningServer,
	startCaddyProxy,
	startNginxOrigin,
	startNginxProxy,
	startNodeOrigin,
	startPlainNodeProxy,
} from "./edge-peers";
import {
	cpuIdleShare,
	findBinary,
	groupCpuSeconds,
	machineCpuSeconds,
	ProcessGroup,
} from "./edge-processes";
import { summariseProfile } from "./edge-profile";
import {
	banner,
	CONTENDED_CORES,
	type EdgeMemory,
	log,
	type Measured,
	type ReportInput,
	report,
	runLine,
	type TargetKey,
} from "./edge-report";
import { type BenchPlatform, seedBulkTenants, setUpPlatform } from "./edge-seed";
import { runWrk, type WrkWorkload, writeLoopbackScript } from "./edge-wrk";

const env = process.env;
const SECONDS = positive(env.BENCH_SECONDS, 10);
const WARMUP_SECONDS = positive(env.BENCH_WARMUP_SECONDS, Math.min(3, SECONDS));
const ROUNDS = positive(env.BENCH_ROUNDS, 1);
const ROUTES = positive(env.BENCH_ROUTES, 100_000);
const WAIT_IDLE_SECONDS = Number(env.BENCH_WAIT_IDLE ?? 0) || 0;
const RETRIES = Number(env.BENCH_RETRIES ?? 1) || 0;
const PROFILE = env.BENCH_CPU_PROF === "1";
const KEEP = env.BENCH_KEEP === "1";
/** Below this idle share before a run, something else is using the cores: wait (BENCH_WAIT_IDLE). */
const IDLE_OK = 0.9;

const WORKLOAD: WrkWorkload = {
	threads: positive(env.BENCH_THREADS, 2),
	connections: positive(env.BENCH_CONNECTIONS, 64),
	seconds: SECONDS,
	timeoutSeconds: 5,
};
const REPO_ROOT = new URL("../../", import.meta.url).pathname;

interface Started {
	port: number;
	/** Process group whose CPU time is the peer's cost. */
	pgid: number;
	stop(): Promise<void>;
	/** Called after the warm-up, right before the measured run. */
	beforeMeasure?(): Promise<void>;
	/** Called after each measured run, while the peer is still up. */
	afterRun?(): Promise<void>;
}

interface Target {
	key: TargetKey;
	label: string;
	tls: boolean;
	/** Why it is not measured (its binary is missing). */
	skipped?: string;
	start(): Promise<Started>;
}

function positive(value: string | undefined, fallback: number): number {
	const n = Number(value);
	return value !== undefined && Number.isFinite(n) && n > 0 ? n : fallback;
}

/** The machine's idle share over one second; with BENCH_WAIT_IDLE, waits for it to reach IDLE_OK. */
async function waitForIdle(): Promise<number | undefined> {
	const deadline = Date.now() + WAIT_IDLE_SECONDS * 1000;
	for (;;) {
		const idle = await cpuIdleShare(1_000);
		if (idle === undefined || idle >= IDLE_OK || Date.now() >= deadline) return idle;
		log(`machine ${(idle * 100).toFixed(0)}% idle: waiting for a quiet moment`);
		await new Promise((resolve) => setTimeout(resolve, 2_000));
	}
}

async function main(): Promise<void> {
	const processes = new ProcessGroup();
	const root = mkdtempSync(join(tmpdir(), "castellan-bench-edge-"));
	let bench: BenchPlatform | undefined;
	let interrupted = false;
	const onSignal = (signal: NodeJS.Signals) => {
		if (interrupted) return;
		interrupted = true;
		log(`\n${signal}: stopping every process the benchmark started`);
		processes.stopAll().finally(() => process.exit(130));
	};
	process.on("SIGINT", onSignal);
	process.on("SIGTERM", onSignal);

	try {
		const wrk = findBinary("wrk", ["/usr/bin/wrk"]);
		const caddy = findBinary("caddy", ["/usr/bin/caddy"]);
		const nginx = findBinary("nginx", ["/usr/sbin/nginx"]);
		if (!wrk) {
			banner("wrk is not installed: nothing can be measured (apt-get install wrk)");
			throw new Error("wrk missing");
		}
		const skipped = [caddy ? "" : "caddy", nginx ? "" : "nginx"].filter(Boolean);
		for (const name of skipped) {
			banner(`SKIPPED: ${name} is not installed (apt-get install ${name}); its figures are null`);
		}

		log("# Castellan edge benchmark");
		log(
			`machine: ${cpus().length} x ${cpus()[0]?.model ?? "?"}, node ${process.version}, ${new Date().toISOString()}`,
		);
		log(
			`workload: wrk -t${WORKLOAD.threads} -c${WORKLOAD.connections} -d${SECONDS}s --latency (after a ${WARMUP_SECONDS}s warm-up), ${ROUNDS} round(s), GET / answered with a ${ORIGIN_BODY.length}-byte body`,
		);
		log(`work dir: ${root}${KEEP ? " (kept)" : ""}`);

		// One origin for every peer: nginx answering from one worker, so it is never the bottleneck.
		const origin: RunningServer = nginx
			? await startNginxOrigin(processes, nginx, join(root, "origin"))
			: await startNodeOrigin(processes, join(root, "origin"));
		if (!nginx) banner("the origin is node:http (nginx missing): it may limit the proxies");
		log(
			`origin: ${nginx ? "nginx, 1 worker, `return 200`" : "node:http"} on 127.0.0.1:${origin.port}`,
		);

		const platformDir = join(root, "platform");
		mkdirSync(platformDir);
		bench = await setUpPlatform(platformDir, `http://127.0.0.1:${origin.port}`);
		const { hostname, tls, trustAnchors } = bench;
		log(`tenant: ${hostname} (internal-CA certificate issued by the provisioning job)`);
		const script = writeLoopbackScript(root);

		const edgeMemory: ReportInput["edgeMemory"] = {};
		const startEdge = async (
			dir: string,
			record: "few" | "many",
			profileFile?: string,
		): Promise<Started> => {
			const child = await EdgeChild.start(processes, {
				dir,
				logFile: join(root, `edge-${record}-${Date.now()}.log`),
			});
			const memory: EdgeMemory = edgeMemory[record] ?? {
				idle: child.ready.memory,
				loadMs: child.ready.loadMs,
				hosts: child.ready.hosts,
			};
			edgeMemory[record] = memory;
			return {
				port: child.ready.httpsPort,
				pgid: child.process.pid,
				stop: () => child.stop(),
				// The profile covers the measured run only: no start-up, warm-up or idle wait in it.
				...(profileFile
					? {
							beforeMeasure: async () => {
								await child.command("profile-start");
							},
							afterRun: async () => {
								await child.command(`profile-stop ${profileFile}`);
							},
						}
					: {
							async afterRun() {
								memory.afterLoad ??= await child.memory();
								memory.peakRssMb = Math.max(
									memory.peakRssMb ?? 0,
									child.procMemory()?.peakRssMb ?? 0,
								);
							},
						}),
			};
		};
		const server = async (running: Promise<RunningServer>): Promise<Started> => {
			const s = await running;
			return { port: s.port, pgid: s.process.pid, stop: () => s.stop() };
		};
		const missing = (name: string, binary: string | undefined) =>
			binary ? {} : { skipped: `${name} is not installed` };
		let runId = 0;
		const dirFor = (key: string) => join(root, `${key}-${++runId}`);
		const cores = cpus().length;

		const targets: Target[] = [
			{
				key: "direct",
				label: "origin direct (HTTP)",
				tls: false,
				start: async () => ({ port: origin.port, pgid: origin.process.pid, stop: async () => {} }),
			},
			{
				key: "edge",
				label: "Castellan Node edge (HTTPS, 1 process)",
				tls: true,
				start: () => startEdge(platformDir, "few"),
			},
			{
				key: "node_plain",
				label: "plain node:https proxy (no Castellan code)",
				tls: true,
				start: () => server(startPlainNodeProxy(processes, dirFor("plain"), tls, origin.port)),
			},
			{
				key: "caddy",
				label: `Caddy (HTTPS, GOMAXPROCS=${cores})`,
				tls: true,
				...missing("caddy", caddy),
				start: () =>
					server(startCaddyProxy(processes, caddy!, dirFor("caddy"), tls, origin.port, undefined)),
			},
			{
				key: "caddy_1proc",
				label: "Caddy (HTTPS, GOMAXPROCS=1)",
				tls: true,
				...missing("caddy", caddy),
				start: () =>
					server(startCaddyProxy(processes, caddy!, dirFor("caddy1"), tls, origin.port, 1)),
			},
			{
				key: "nginx",
				label: `nginx (HTTPS, worker_processes auto = ${cores})`,
				tls: true,
				...missing("nginx", nginx),
				start: () =>
					server(startNginxProxy(processes, nginx!, dirFor("nginx"), tls, origin.port, "auto")),
			},
			{
				key: "nginx_1worker",
				label: "nginx (HTTPS, worker_processes 1)",
				tls: true,
				...missing("nginx", nginx),
				start: () =>
					server(startNginxProxy(processes, nginx!, dirFor("nginx1"), tls, origin.port, 1)),
			},
		];

		const results = new Map<TargetKey, Measured[]>();
		const tlsInfo = new Map<TargetKey, TlsInfo>();
		const problems: string[] = [];
		const measure = async (label: string, peer: Started, isTls: boolean): Promise<Measured> => {
			const url = `${isTls ? "https" : "http"}://${hostname}:${peer.port}/`;
			const idleBefore = await waitForIdle();
			await runWrk(processes, wrk, script, url, { ...WORKLOAD, seconds: WARMUP_SECONDS });
			await peer.beforeMeasure?.();
			const machineBefore = machineCpuSeconds();
			const peerBefore = groupCpuSeconds(peer.pgid);
			const originBefore = groupCpuSeconds(origin.process.pid);
			const result = await runWrk(processes, wrk, script, url, WORKLOAD);
			const peerCpu = groupCpuSeconds(peer.pgid) - peerBefore;
			// The direct run's peer is the origin: count it once.
			const originCpu =
				peer.pgid === origin.process.pid ? 0 : groupCpuSeconds(origin.process.pid) - originBefore;
			const machineCpu = machineCpuSeconds() - machineBefore;
			const othersCores = Math.max(
				0,
				(machineCpu - peerCpu - originCpu - result.wrkCpuSeconds) / SECONDS,
			);
			if (othersCores > CONTENDED_CORES) {
				const line = `${label}: other processes used ${othersCores.toFixed(2)} cores during the run (CPU µs/req stays meaningful, req/s and latency do not)`;
				problems.push(line);
				banner(`BUSY MACHINE: ${line}`);
			}
			const e = result.socketErrors;
			if (result.non2xx > 0 || e.connect + e.read + e.write + e.timeout > 0) {
				const line = `${label}: ${result.non2xx} non-2xx answers, socket errors ${JSON.stringify(e)}`;
				problems.push(line);
				banner(`ERRORS: ${line}`);
			}
			const perRequest = (cpu: number) => (result.requests > 0 ? (cpu * 1e6) / result.requests : 0);
			return {
				...result,
				idleBefore,
				peerCpuUs: perRequest(peerCpu),
				peerCores: peerCpu / SECONDS,
				originCpuUs: perRequest(peer.pgid === origin.process.pid ? peerCpu : originCpu),
				othersCores,
			};
		};

		for (let round = 1; round <= ROUNDS; round++) {
			log(`\n## round ${round}/${ROUNDS}`);
			for (const target of targets) {
				if (target.skipped) continue;
				const peer = await target.start();
				try {
					const info = await checkPeer(peer.port, target.tls, hostname, trustAnchors);
					if (info) tlsInfo.set(target.key, info);
					// A run disturbed by other processes is kept (and flagged) but measured again.
					for (let attempt = 0; attempt <= RETRIES; attempt++) {
						const result = await measure(target.label, peer, target.tls);
						await peer.afterRun?.();
						results.set(target.key, [...(results.get(target.key) ?? []), result]);
						log(runLine(target.label, result));
						if (result.othersCores <= CONTENDED_CORES) break;
					}
				} finally {
					await peer.stop();
				}
			}
		}

		// The edge's CPU profile under the same workload: a run of its own, its figures not reused.
		let profile: ReportInput["profile"];
		let profileFile: string | undefined;
		if (PROFILE) {
			const profDir = mkdtempSync(join(tmpdir(), "castellan-edge-cpuprofile-"));
			profileFile = join(profDir, "edge.cpuprofile");
			const edge = await startEdge(platformDir, "few", profileFile);
			try {
				await checkPeer(edge.port, true, hostname, trustAnchors);
				const r = await measure("edge (profiled)", edge, true);
				await edge.afterRun?.();
				log(runLine("edge under the profiler (overhead included)", r));
			} finally {
				await edge.stop();
			}
			profile = summariseProfile(profileFile, REPO_ROOT);
		}

		// Memory: a process that loads nothing, then the edge with ROUTES more tenants loaded.
		const baseline = await EdgeChild.start(processes, {
			dir: "--baseline",
			logFile: join(root, "baseline.log"),
		});
		const baselineRssMb = baseline.ready.memory.rssMb;
		await baseline.stop();

		log(`\n## ${ROUTES} more tenants`);
		const seedStarted = performance.now();
		let reported = 0;
		await seedBulkTenants(bench, ROUTES, (done) => {
			if (done - reported >= 20_000 || done === ROUTES) {
				reported = done;
				log(`seeded ${done}/${ROUTES} tenants (a route and a certificate row each)`);
			}
		});
		log(`seeding took ${((performance.now() - seedStarted) / 1000).toFixed(1)} s`);
		const manyEdge = await startEdge(platformDir, "many");
		let many: Measured | undefined;
		try {
			const m = edgeMemory.many!;
			log(`edge ready with ${m.hosts} hosts in ${(m.loadMs / 1000).toFixed(1)} s`);
			await checkPeer(manyEdge.port, true, hostname, trustAnchors);
			many = await measure(`edge (${m.hosts} routes)`, manyEdge, true);
			await manyEdge.afterRun?.();
			log(runLine(`Castellan Node edge, ${m.hosts} routes`, many));
		} finally {
			await manyEdge.stop();
		}

		report({
			targets,
			results,
			tlsInfo,
			edgeMemory,
			baselineRssMb,
			many,
			problems,
			skipped,
			profile,
			profileFile,
			originKind: nginx ? "nginx" : "node:http",
			config: {
				seconds: SECONDS,
				rounds: ROUNDS,
				threads: WORKLOAD.threads,
				connections: WORKLOAD.connections,
			},
		});
	} finally {
		await processes.stopAll();
		bench?.test.close();
		if (!KEEP) rmSync(root, { recursive: true, force: true });
	}
}

main().then(
	() => process.exit(0),
	(err: unknown) => {
		process.stderr.write(`bench:edge failed: ${err instanceof Error ? err.stack : String(err)}\n`);
		process.exit(1);
	},
);
