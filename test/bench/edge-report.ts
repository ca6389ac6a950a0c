import type { TlsInfo } from "./edge-check";
import type { HotSpot } from "./edge-profile";
import type { RunnerMemory } from "./edge-runner";
import type { WrkResult } from "./edge-wrk";

export type TargetKey =
	| "direct"
	| "edge"
	| "node_plain"
	| "caddy"
	| "caddy_1proc"
	| "nginx"
	| "nginx_1worker";

/** One measured run: wrk's figures plus what it cost in CPU, read from /proc. */
export interface Measured extends WrkResult {
	/** Machine-wide idle share in the second before the run (undefined where /proc/stat is missing). */
	idleBefore: number | undefined;
	/** CPU time of the peer's processes per request, in microseconds. */
	peerCpuUs: number;
	/** Average cores the peer kept busy during the run. */
	peerCores: number;
	/** CPU time of the origin per request, in microseconds (the origin must stay far from a core). */
	originCpuUs: number;
	/** Cores other processes (not the peer, origin or wrk) kept busy during the run, on average. */
	othersCores: number;
}

/**
 * Above this many cores used by other processes during a run, its req/s and latency measure the
 * neighbours as much as the peer: the run is flagged, and left out of the medians when the peer
 * has clean runs.
 */
export const CONTENDED_CORES = 0.1;

export interface Summary {
	/** Runs without other load (the medians come from these when there is any), out of all runs. */
	clean: number;
	of: number;
	rps: number;
	p50Ms: number;
	p99Ms: number;
	peerCpuUs: number;
	peerCores: number;
	originCpuUs: number;
}

export interface EdgeMemory {
	/** After loading, before any traffic, after a full GC. */
	idle: RunnerMemory;
	/** After the measured run, after a full GC. */
	afterLoad?: RunnerMemory;
	/** Peak RSS of the process (VmHWM), e.g. while loading. */
	peakRssMb?: number;
	loadMs: number;
	hosts: number;
}

export interface ReportInput {
	targets: Array<{ key: TargetKey; label: string; skipped?: string }>;
	results: Map<TargetKey, Measured[]>;
	tlsInfo: Map<TargetKey, TlsInfo>;
	edgeMemory: { few?: EdgeMemory; many?: EdgeMemory };
	baselineRssMb: number;
	many: Measured | undefined;
	problems: string[];
	skipped: string[];
	profile: { self: HotSpot[]; total: HotSpot[] } | undefined;
	profileFile: string | undefined;
	originKind: string;
	config: { seconds: number; rounds: number; threads: number; connections: number };
}

function median(values: number[]): number {
	const sorted = [...values].sort((a, b) => a - b);
	const mid = Math.floor(sorted.length / 2);
	return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Medians per figure over the clean runs (or over all runs when none was clean): a round in which
 * another job woke up does not decide.
 */
export function summarise(all: Measured[]): Summary {
	const clean = all.filter((r) => r.othersCores <= CONTENDED_CORES);
	const runs = clean.length > 0 ? clean : all;
	const m = (pick: (r: Measured) => number) => median(runs.map(pick));
	return {
		clean: clean.length,
		of: all.length,
		rps: m((r) => r.rps),
		p50Ms: m((r) => r.p50Ms),
		p99Ms: m((r) => r.p99Ms),
		peerCpuUs: m((r) => r.peerCpuUs),
		peerCores: m((r) => r.peerCores),
		originCpuUs: m((r) => r.originCpuUs),
	};
}

function ratio(a: number | undefined, b: number | undefined): number | null {
	return a !== undefined && b !== undefined && b > 0 ? Math.round((a / b) * 1000) / 1000 : null;
}

export function fixed(n: number | undefined | null, digits: number): string {
	return n === undefined || n === null || !Number.isFinite(n) ? "n/a" : n.toFixed(digits);
}

export function log(line = ""): void {
	process.stdout.write(`${line}\n`);
}

export function banner(line: string): void {
	const bar = "!".repeat(Math.min(100, line.length + 8));
	log(bar);
	log(`!!! ${line} !!!`);
	log(bar);
}

const LABEL_WIDTH = 46;

export function runLine(label: string, r: Measured): string {
	return `${label.padEnd(LABEL_WIDTH)} ${fixed(r.rps, 0).padStart(8)} req/s  p50 ${fixed(r.p50Ms, 2).padStart(6)} ms  p99 ${fixed(r.p99Ms, 2).padStart(6)} ms  ${fixed(r.peerCpuUs, 0).padStart(5)} µs CPU/req (${fixed(r.peerCores, 2)} cores)  origin ${fixed(r.originCpuUs, 0)} µs/req  others ${fixed(r.othersCores, 2)} cores`;
}

/** The human-readable summary, then the JSON line (always the last line of output). */
export function report(input: ReportInput): void {
	const { targets, results, edgeMemory } = input;
	const s = new Map<TargetKey, Summary>();
	for (const [key, runs] of results) s.set(key, summarise(runs));
	const edge = s.get("edge");
	const caddy = s.get("caddy");
	const rps = (key: TargetKey) => s.get(key)?.rps;
	const rounds = input.config.rounds;

	log(
		`\n## results (medians over the runs without other load, "clean/all"; ${rounds} round${rounds > 1 ? "s" : ""})`,
	);
	log(
		`${"peer".padEnd(LABEL_WIDTH)} ${"req/s".padStart(8)} ${"p50 ms".padStart(8)} ${"p99 ms".padStart(8)} ${"CPU µs/req".padStart(11)} ${"cores".padStart(6)} ${"edge/peer".padStart(10)} ${"runs".padStart(5)}  TLS`,
	);
	for (const target of targets) {
		const r = s.get(target.key);
		if (!r) {
			log(`${target.label.padEnd(LABEL_WIDTH)} SKIPPED (${target.skipped ?? "not measured"})`);
			continue;
		}
		const tls = input.tlsInfo.get(target.key);
		const vsEdge = target.key === "edge" ? "" : fixed(ratio(edge?.rps, r.rps), 2);
		// "0/3!": no clean run, the medians include neighbours' load.
		const runs = `${r.clean}/${r.of}${r.clean === 0 ? "!" : ""}`;
		log(
			`${target.label.padEnd(LABEL_WIDTH)} ${fixed(r.rps, 0).padStart(8)} ${fixed(r.p50Ms, 2).padStart(8)} ${fixed(r.p99Ms, 2).padStart(8)} ${fixed(r.peerCpuUs, 0).padStart(11)} ${fixed(r.peerCores, 2).padStart(6)} ${vsEdge.padStart(10)} ${runs.padStart(5)}  ${tls ? `${tls.protocol} ${tls.cipher}` : "-"}`,
		);
	}
	if (input.many) {
		const m = input.many;
		log(
			`${`Castellan Node edge, ${edgeMemory.many?.hosts ?? "?"} routes`.padEnd(LABEL_WIDTH)} ${fixed(m.rps, 0).padStart(8)} ${fixed(m.p50Ms, 2).padStart(8)} ${fixed(m.p99Ms, 2).padStart(8)} ${fixed(m.peerCpuUs, 0).padStart(11)} ${fixed(m.peerCores, 2).padStart(6)}`,
		);
	}
	const goalMet = edge && caddy ? edge.rps >= caddy.rps && edge.p99Ms <= caddy.p99Ms : null;
	const r = (key: TargetKey) => fixed(ratio(edge?.rps, rps(key)), 3);
	log(
		`\nratios (requests/s): edge/direct ${r("direct")}, edge/caddy ${r("caddy")}, edge/nginx ${r("nginx")}, edge/caddy(1 proc) ${r("caddy_1proc")}, edge/nginx(1 worker) ${r("nginx_1worker")}, edge/plain node proxy ${r("node_plain")}`,
	);
	log(
		`CPU per request (lower is better): edge ${fixed(edge?.peerCpuUs, 0)} µs, caddy ${fixed(caddy?.peerCpuUs, 0)} µs, nginx ${fixed(s.get("nginx")?.peerCpuUs, 0)} µs, plain node proxy ${fixed(s.get("node_plain")?.peerCpuUs, 0)} µs`,
	);
	log(
		`goal (edge req/s >= Caddy's and edge p99 <= Caddy's): ${goalMet === null ? "n/a (Caddy not measured)" : goalMet ? "MET" : "NOT MET"}`,
	);

	const few = edgeMemory.few;
	const many = edgeMemory.many;
	log(
		`\n## edge memory (RSS after a full GC; a bare node + tsx process: ${input.baselineRssMb} MB)`,
	);
	for (const m of [few, many]) {
		if (!m) continue;
		log(
			`${`${m.hosts} route(s)`.padEnd(16)} idle ${fixed(m.idle.rssMb, 1)} MB (JS heap ${fixed(m.idle.heapUsedMb, 1)} MB), after the load test ${fixed(m.afterLoad?.rssMb, 1)} MB, peak ${fixed(m.peakRssMb, 1)} MB, ready in ${(m.loadMs / 1000).toFixed(1)} s`,
		);
	}
	if (input.profile) {
		log(`\n## edge CPU profile (${input.profileFile})`);
		log("self time:");
		for (const h of input.profile.self) log(`  ${fixed(h.selfPct, 1).padStart(5)}%  ${h.frame}`);
		log("inclusive time:");
		for (const h of input.profile.total) log(`  ${fixed(h.totalPct, 1).padStart(5)}%  ${h.frame}`);
	}
	if (input.problems.length > 0) {
		banner(
			`${input.problems.length} RUN(S) MAY BE INVALID: read these before trusting the figures`,
		);
		for (const problem of input.problems) log(`  - ${problem}`);
	}
	for (const name of input.skipped) banner(`SKIPPED: ${name} not installed, its figures are null`);

	const hundredK = (many?.hosts ?? 0) >= 100_000;
	const round2 = (n: number | undefined) =>
		n === undefined || !Number.isFinite(n) ? null : Math.round(n * 100) / 100;
	const json = {
		direct_rps: round2(rps("direct")),
		edge_rps: round2(rps("edge")),
		caddy_rps: round2(rps("caddy")),
		nginx_rps: round2(rps("nginx")),
		caddy_1proc_rps: round2(rps("caddy_1proc")),
		nginx_1worker_rps: round2(rps("nginx_1worker")),
		node_plain_proxy_rps: round2(rps("node_plain")),
		edge_bulk_routes_rps: round2(input.many?.rps),
		direct_p50_ms: round2(s.get("direct")?.p50Ms),
		direct_p99_ms: round2(s.get("direct")?.p99Ms),
		edge_p50_ms: round2(edge?.p50Ms),
		edge_p99_ms: round2(edge?.p99Ms),
		caddy_p50_ms: round2(caddy?.p50Ms),
		caddy_p99_ms: round2(caddy?.p99Ms),
		nginx_p50_ms: round2(s.get("nginx")?.p50Ms),
		nginx_p99_ms: round2(s.get("nginx")?.p99Ms),
		caddy_1proc_p99_ms: round2(s.get("caddy_1proc")?.p99Ms),
		nginx_1worker_p99_ms: round2(s.get("nginx_1worker")?.p99Ms),
		edge_bulk_routes_p99_ms: round2(input.many?.p99Ms),
		edge_cpu_us_per_req: round2(edge?.peerCpuUs),
		caddy_cpu_us_per_req: round2(caddy?.peerCpuUs),
		nginx_cpu_us_per_req: round2(s.get("nginx")?.peerCpuUs),
		node_plain_proxy_cpu_us_per_req: round2(s.get("node_plain")?.peerCpuUs),
		edge_vs_direct: ratio(edge?.rps, rps("direct")),
		edge_vs_caddy: ratio(edge?.rps, rps("caddy")),
		edge_vs_nginx: ratio(edge?.rps, rps("nginx")),
		edge_vs_caddy_1proc: ratio(edge?.rps, rps("caddy_1proc")),
		edge_vs_nginx_1worker: ratio(edge?.rps, rps("nginx_1worker")),
		edge_vs_node_plain_proxy: ratio(edge?.rps, rps("node_plain")),
		edge_p99_vs_caddy_p99: ratio(edge?.p99Ms, caddy?.p99Ms),
		edge_cpu_vs_caddy_cpu: ratio(edge?.peerCpuUs, caddy?.peerCpuUs),
		goal_met: goalMet,
		edge_rss_mb_few_routes: few?.idle.rssMb ?? null,
		// The *_100k_* keys only when 100,000 routes were loaded; *_bulk_* whatever BENCH_ROUTES was.
		edge_rss_mb_100k_routes: hundredK ? (many?.idle.rssMb ?? null) : null,
		edge_rss_mb_bulk_routes: many?.idle.rssMb ?? null,
		edge_rss_mb_bulk_routes_after_load: many?.afterLoad?.rssMb ?? null,
		edge_peak_rss_mb_bulk_routes: round2(many?.peakRssMb),
		edge_heap_mb_bulk_routes: many?.idle.heapUsedMb ?? null,
		edge_ready_s_bulk_routes: many ? round2(many.loadMs / 1000) : null,
		node_baseline_rss_mb: input.baselineRssMb,
		routes: many?.hosts ?? null,
		bench_seconds: input.config.seconds,
		rounds,
		wrk_threads: input.config.threads,
		wrk_connections: input.config.connections,
		origin: input.originKind,
		tls: Object.fromEntries([...input.tlsInfo].map(([k, v]) => [k, `${v.protocol} ${v.cipher}`])),
		// Per peer: runs without other load / all runs; "0/n" means its medians include others' load.
		clean_runs: Object.fromEntries([...s].map(([k, v]) => [k, `${v.clean}/${v.of}`])),
		skipped: input.skipped,
		problems: input.problems.length,
	};
	log(JSON.stringify(json));
}
