import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants, createWriteStream, readdirSync, readFileSync } from "node:fs";
import { createServer, connect as netConnect } from "node:net";
import { delimiter, join } from "node:path";

/** /proc counts CPU time in clock ticks of 1/USER_HZ s; USER_HZ is 100 on every Linux this runs on. */
const USER_HZ = 100;

/** A child the benchmark started; `stop()` ends it and everything it forked. */
export interface ManagedProcess {
	name: string;
	child: ChildProcess;
	pid: number;
	/** Resolves with the exit code (or the signal name) when the process has ended. */
	exited: Promise<number | string>;
	stop(graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
	env?: NodeJS.ProcessEnv;
	cwd?: string;
	/** stdout and stderr go to this file; otherwise stdout is piped for the caller and stderr too. */
	logFile?: string;
	stdin?: "pipe" | "ignore";
}

/**
 * Every process the benchmark starts, so all of them are stopped at the end, on failure, on
 * Ctrl-C and, as a last resort, when the harness itself exits. Each child gets its own process
 * group (nginx forks workers): stopping signals the group of that child's own pid, nothing else.
 */
export class ProcessGroup {
	readonly #running = new Set<ManagedProcess>();

	constructor() {
		// Synchronous last resort: 'exit' handlers cannot wait, so no grace period here.
		process.on("exit", () => {
			for (const p of this.#running) signalGroup(p.pid, "SIGKILL");
		});
	}

	spawn(name: string, command: string, args: string[], options: SpawnOptions = {}): ManagedProcess {
		const log = options.logFile ? createWriteStream(options.logFile) : undefined;
		const child = spawn(command, args, {
			cwd: options.cwd,
			env: options.env ?? process.env,
			detached: true,
			stdio: [options.stdin ?? "ignore", "pipe", "pipe"],
		});
		if (child.pid === undefined) throw new Error(`${name}: could not start ${command}`);
		if (log) {
			child.stdout?.pipe(log);
			child.stderr?.pipe(log);
		}
		const pid = child.pid;
		const exited = new Promise<number | string>((resolve) => {
			child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown"));
		});
		const managed: ManagedProcess = {
			name,
			child,
			pid,
			exited,
			stop: async (graceMs = 5_000) => {
				if (!this.#running.has(managed)) return;
				signalGroup(pid, "SIGTERM");
				const done = await Promise.race([
					exited.then(() => true),
					new Promise<boolean>((resolve) => setTimeout(() => resolve(false), graceMs).unref()),
				]);
				if (!done) {
					signalGroup(pid, "SIGKILL");
					await exited;
				}
				// The leader may exit before its workers: make sure the group is gone too.
				signalGroup(pid, "SIGKILL");
				this.#running.delete(managed);
			},
		};
		this.#running.add(managed);
		exited.then(() => {
			// A leader that died on its own may leave workers behind in its group.
			signalGroup(pid, "SIGKILL");
			this.#running.delete(managed);
		});
		return managed;
	}

	async stopAll(): Promise<void> {
		await Promise.all([...this.#running].map((p) => p.stop(3_000)));
	}
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
	try {
		process.kill(-pid, signal);
	} catch {
		// Already gone.
	}
}

export function sleep(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A port free right now on 127.0.0.1 (the tiny race before the peer binds it is acceptable here). */
export function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.once("error", reject);
		server.listen(0, "127.0.0.1", () => {
			const address = server.address();
			const port = typeof address === "object" && address ? address.port : 0;
			server.close(() => resolve(port));
		});
	});
}

/** Waits until something accepts TCP connections on the port, or fails when the process exits first. */
export async function waitForPort(
	p: ManagedProcess,
	port: number,
	timeoutMs = 15_000,
): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	let exitedWith: number | string | undefined;
	p.exited.then((code) => {
		exitedWith = code;
	});
	while (Date.now() < deadline) {
		if (exitedWith !== undefined)
			throw new Error(`${p.name} exited (${exitedWith}) before listening`);
		if (await canConnect(port)) return;
		await sleep(50);
	}
	throw new Error(`${p.name} did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

function canConnect(port: number): Promise<boolean> {
	return new Promise((resolve) => {
		const socket = netConnect({ host: "127.0.0.1", port });
		socket.once("connect", () => {
			socket.destroy();
			resolve(true);
		});
		socket.once("error", () => resolve(false));
	});
}

/** The executable's path, from PATH or the given fallbacks (sbin is not on every user's PATH). */
export function findBinary(name: string, fallbacks: string[] = []): string | undefined {
	const dirs = (process.env.PATH ?? "").split(delimiter).filter(Boolean);
	for (const candidate of [...dirs.map((d) => join(d, name)), ...fallbacks]) {
		try {
			accessSync(candidate, constants.X_OK);
			return candidate;
		} catch {
			// Not there.
		}
	}
	return undefined;
}

/** Resident and peak resident memory of a live process, in MiB, from /proc. */
export function processMemory(pid: number): { rssMb: number; peakRssMb: number } | undefined {
	try {
		const status = readFileSync(`/proc/${pid}/status`, "utf8");
		const kb = (field: string) =>
			Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
		return { rssMb: kb("VmRSS") / 1024, peakRssMb: kb("VmHWM") / 1024 };
	} catch {
		return undefined;
	}
}

/** The last lines of a log file, for error messages. */
export function tail(file: string, lines = 20): string {
	try {
		return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
	} catch {
		return "(no log)";
	}
}

/**
 * Share of CPU time that was idle machine-wide over `ms`, from /proc/stat. Other work on a
 * shared machine (test suites, compilers) steals cores from the peers: runs that start on a
 * busy machine are flagged, and BENCH_WAIT_IDLE makes the bench wait for a quiet moment.
 */
export async function cpuIdleShare(ms: number): Promise<number | undefined> {
	const read = () => {
		try {
			const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
			const fields = line.trim().split(/\s+/).slice(1).map(Number);
			const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
			return { idle, total: fields.reduce((a, b) => a + b, 0) };
		} catch {
			return undefined;
		}
	};
	const before = read();
	await sleep(ms);
	const after = read();
	if (!before || !after || after.total === before.total) return undefined;
	return (after.idle - before.idle) / (after.total - before.total);
}

/**
 * CPU seconds (user + system) used so far by every live process of a process group, from
 * /proc. Divided by the requests served, it gives a cost per request that other work on a
 * shared machine does not distort the way it distorts requests per second.
 */
export function groupCpuSeconds(pgid: number): number {
	let ticks = 0;
	for (const entry of readdirSync("/proc")) {
		if (!/^\d+$/.test(entry)) continue;
		try {
			const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
			// The command name is in parentheses and may hold spaces: fields start after the last ")".
			const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
			if (Number(fields[2]) !== pgid) continue;
			ticks += Number(fields[11]) + Number(fields[12]);
		} catch {
			// The process ended meanwhile.
		}
	}
	return ticks / USER_HZ;
}

/**
 * CPU seconds (user + nice + system) used machine-wide so far, from /proc/stat: the same
 * accounting as `groupCpuSeconds`, so the difference over a run is what other processes used.
 * Interrupt time is left out: the loopback traffic of the run itself shows up there.
 */
export function machineCpuSeconds(): number {
	try {
		const fields = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "")
			.trim()
			.split(/\s+/)
			.slice(1)
			.map(Number);
		return ((fields[0] ?? 0) + (fields[1] ?? 0) + (fields[2] ?? 0)) / USER_HZ;
	} catch {
		return Number.NaN;
	}
}

/** CPU seconds used so far by one process (all its threads); 0 once it is gone. */
export function processCpuSeconds(pid: number): number {
	try {
		const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
		const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
		return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
	} catch {
		return 0;
	}
}
