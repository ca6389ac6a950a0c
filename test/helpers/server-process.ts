import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";

const LOG_LIMIT = 64 * 1024;
const STOP_DEADLINE_MS = 5_000;

/** A real server binary run for a test suite, with its output kept for failure messages. */
export interface ServerProcess {
	child: ChildProcess;
	/** Resolves with the signal or `code N` once the process is gone. */
	exited: Promise<string>;
	hasExited(): boolean;
	/** What it printed so far (the last 64 KiB). */
	logs(): string;
	/** SIGTERM, then SIGKILL after a deadline. */
	stop(): Promise<void>;
}

export function spawnServer(
	binary: string,
	args: string[],
	env?: NodeJS.ProcessEnv,
): ServerProcess {
	const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"], ...(env ? { env } : {}) });
	let log = "";
	const append = (chunk: Buffer) => {
		log = (log + chunk.toString("utf8")).slice(-LOG_LIMIT);
	};
	child.stdout?.on("data", append);
	child.stderr?.on("data", append);
	let exited = false;
	const exitedPromise = new Promise<string>((resolve) => {
		child.once("exit", (code, signal) => {
			exited = true;
			resolve(signal ?? `code ${code}`);
		});
		child.once("error", (err) => {
			exited = true;
			append(Buffer.from(`spawn failed: ${err.message}\n`));
			resolve("spawn error");
		});
	});
	// A test process that dies without calling stop() must not leave the server behind.
	const killOnExit = () => child.kill("SIGKILL");
	process.once("exit", killOnExit);
	return {
		child,
		exited: exitedPromise,
		hasExited: () => exited,
		logs: () => log,
		async stop() {
			process.removeListener("exit", killOnExit);
			if (exited) return;
			child.kill("SIGTERM");
			const timer = setTimeout(() => child.kill("SIGKILL"), STOP_DEADLINE_MS);
			await exitedPromise;
			clearTimeout(timer);
		},
	};
}

/** A TCP port free on 127.0.0.1 right now (the caller retries if something takes it first). */
export async function freeTcpPort(): Promise<number> {
	const server = createServer();
	await new Promise<void>((resolve, reject) => {
		server.once("error", reject);
		server.listen(0, "127.0.0.1", resolve);
	});
	const address = server.address();
	await new Promise((resolve) => server.close(resolve));
	if (address === null || typeof address === "string") throw new Error("no TCP port assigned");
	return address.port;
}
