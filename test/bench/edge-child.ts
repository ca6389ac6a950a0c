import { createWriteStream } from "node:fs";
import { createInterface } from "node:readline";
import { EDGE_RUNNER } from "./edge-peers";
import { type ManagedProcess, type ProcessGroup, processMemory, tail } from "./edge-processes";
import type { RunnerMemory, RunnerReady } from "./edge-runner";

export interface EdgeChildOptions {
	/** The platform directory, or "--baseline" for a process that loads nothing. */
	dir: string;
	/** stderr goes here. */
	logFile: string;
	/** How long the first load may take (100,000 certificates take a while to decrypt). */
	readyTimeoutMs?: number;
}

type Message = Record<string, unknown>;

/** The runner's stdout as a queue of JSON messages; a receive fails if the process exits first. */
class Messages {
	readonly #queue: Message[] = [];
	#waiter: ((message: Message) => void) | undefined;
	#exited: number | string | undefined;

	constructor(p: ManagedProcess) {
		createInterface({ input: p.child.stdout! }).on("line", (line) => {
			let message: Message;
			try {
				message = JSON.parse(line) as Message;
			} catch {
				return; // Not protocol: a stray log line.
			}
			const waiter = this.#waiter;
			this.#waiter = undefined;
			if (waiter) waiter(message);
			else this.#queue.push(message);
		});
		p.exited.then((code) => {
			this.#exited = code;
		});
	}

	receive(timeoutMs: number, p: ManagedProcess): Promise<Message> {
		const queued = this.#queue.shift();
		if (queued) return Promise.resolve(queued);
		if (this.#exited !== undefined)
			return Promise.reject(new Error(`the edge runner exited (${this.#exited})`));
		return new Promise((resolve, reject) => {
			const timer = setTimeout(() => {
				this.#waiter = undefined;
				reject(new Error(`the edge runner sent nothing within ${timeoutMs} ms`));
			}, timeoutMs);
			p.exited.then((code) => {
				clearTimeout(timer);
				reject(new Error(`the edge runner exited (${code})`));
			});
			this.#waiter = (message) => {
				clearTimeout(timer);
				resolve(message);
			};
		});
	}
}

/** The parent's handle on edge-runner.ts: its first message, memory on demand, a clean stop. */
export class EdgeChild {
	private constructor(
		readonly process: ManagedProcess,
		readonly ready: RunnerReady,
		readonly logFile: string,
		private readonly messages: Messages,
	) {}

	static async start(processes: ProcessGroup, options: EdgeChildOptions): Promise<EdgeChild> {
		const args = ["--expose-gc", "--import", "tsx", EDGE_RUNNER, options.dir];
		// node itself, not an npx/tsx wrapper: the pid whose /proc we read is the edge process.
		const p = processes.spawn("castellan edge", process.execPath, args, { stdin: "pipe" });
		p.child.stderr?.pipe(createWriteStream(options.logFile));
		const messages = new Messages(p);
		try {
			const ready = await messages.receive(options.readyTimeoutMs ?? 1_800_000, p);
			return new EdgeChild(p, ready as unknown as RunnerReady, options.logFile, messages);
		} catch (err) {
			await p.stop();
			throw new Error(
				`${(err as Error).message}\n--- ${options.logFile} ---\n${tail(options.logFile)}`,
			);
		}
	}

	/** Sends one protocol line and waits for the answer. */
	async command(line: string): Promise<Record<string, unknown>> {
		this.process.child.stdin?.write(`${line}\n`);
		return this.messages.receive(60_000, this.process);
	}

	/** Memory after a full GC, as the edge process sees it. */
	async memory(): Promise<RunnerMemory> {
		return (await this.command("memory")).memory as RunnerMemory;
	}

	/** RSS and peak RSS from /proc: the operating system's view, the figure an operator sees. */
	procMemory(): { rssMb: number; peakRssMb: number } | undefined {
		return processMemory(this.process.pid);
	}

	/** Asks for a clean exit (closing the edge and the store), then makes sure it is gone. */
	async stop(): Promise<void> {
		this.process.child.stdin?.end("stop\n");
		await Promise.race([
			this.process.exited,
			new Promise((resolve) => setTimeout(resolve, 30_000).unref()),
		]);
		await this.process.stop();
	}
}
