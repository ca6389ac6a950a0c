import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type ProcessGroup, processCpuSeconds } from "./edge-processes";

export interface WrkWorkload {
	threads: number;
	connections: number;
	seconds: number;
	/** Per-request timeout; slower requests are counted as timeouts, not as latency. */
	timeoutSeconds: number;
}

export interface WrkResult {
	rps: number;
	p50Ms: number;
	p75Ms: number;
	p90Ms: number;
	p99Ms: number;
	requests: number;
	non2xx: number;
	socketErrors: { connect: number; read: number; write: number; timeout: number };
	/** CPU seconds wrk itself used (sampled until it exits: a slight undercount). */
	wrkCpuSeconds: number;
	raw: string;
}

/**
 * wrk resolves the URL's host itself and sends it as SNI and Host. `*.localhost` names do not
 * resolve through this machine's NSS, so this script keeps the name (SNI, Host) and only points
 * the connection at 127.0.0.1, like a DNS record would.
 */
export function writeLoopbackScript(dir: string): string {
	const file = join(dir, "loopback.lua");
	writeFileSync(
		file,
		[
			"local lookup = wrk.lookup",
			"wrk.lookup = function(host, service) return lookup('127.0.0.1', service) end",
			"",
		].join("\n"),
	);
	return file;
}

export async function runWrk(
	processes: ProcessGroup,
	wrk: string,
	script: string,
	url: string,
	workload: WrkWorkload,
): Promise<WrkResult> {
	const args = [
		`-t${workload.threads}`,
		`-c${workload.connections}`,
		`-d${workload.seconds}s`,
		`--timeout`,
		`${workload.timeoutSeconds}s`,
		"--latency",
		"-s",
		script,
		url,
	];
	const p = processes.spawn("wrk", wrk, args);
	let out = "";
	let err = "";
	p.child.stdout?.on("data", (chunk: Buffer) => {
		out += chunk.toString();
	});
	p.child.stderr?.on("data", (chunk: Buffer) => {
		err += chunk.toString();
	});
	// /proc forgets a process once it exits: sample its CPU time while it runs.
	let wrkCpuSeconds = 0;
	const sampler = setInterval(() => {
		wrkCpuSeconds = Math.max(wrkCpuSeconds, processCpuSeconds(p.pid));
	}, 250);
	const code = await p.exited;
	clearInterval(sampler);
	await p.stop();
	if (code !== 0) throw new Error(`wrk ${url} failed (${code}): ${err || out}`);
	return { ...parseWrk(out), wrkCpuSeconds };
}

export function parseWrk(raw: string): Omit<WrkResult, "wrkCpuSeconds"> {
	const number = (re: RegExp) => {
		const m = re.exec(raw);
		return m ? Number(m[1]) : Number.NaN;
	};
	const percentile = (p: number) => {
		const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, "m").exec(raw);
		if (!m) return Number.NaN;
		const factor = { us: 0.001, ms: 1, s: 1_000, m: 60_000 }[m[2] as "us" | "ms" | "s" | "m"];
		return Number(m[1]) * factor;
	};
	const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(raw);
	const result: Omit<WrkResult, "wrkCpuSeconds"> = {
		rps: number(/^Requests\/sec:\s+([\d.]+)/m),
		p50Ms: percentile(50),
		p75Ms: percentile(75),
		p90Ms: percentile(90),
		p99Ms: percentile(99),
		requests: number(/^\s*(\d+) requests in /m),
		non2xx: /Non-2xx or 3xx responses: (\d+)/.exec(raw)
			? number(/Non-2xx or 3xx responses: (\d+)/)
			: 0,
		socketErrors: {
			connect: Number(errors?.[1] ?? 0),
			read: Number(errors?.[2] ?? 0),
			write: Number(errors?.[3] ?? 0),
			timeout: Number(errors?.[4] ?? 0),
		},
		raw,
	};
	if (!Number.isFinite(result.rps) || !Number.isFinite(result.p99Ms)) {
		throw new Error(`cannot read wrk's output:\n${raw}`);
	}
	return result;
}
