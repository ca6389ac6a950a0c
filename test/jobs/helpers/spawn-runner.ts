import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const runner = fileURLToPath(new URL("./jobs-runner.ts", import.meta.url));

export interface RunnerExit {
	code: number | null;
	signal: string | null;
	/** stdout and stderr together, for failure messages. */
	out: string;
	/** The JSON line the runner printed when it finished. */
	result?: Record<string, number>;
}

/** Runs jobs-runner.ts in a child process (see its header for the arguments). */
export function spawnRunner(input: {
	dir: string;
	job: "renew" | "probe" | "apply-failovers";
	holder: string;
	now: Date;
	crashAt?: string;
	pdns?: { apiUrl: string; apiKey: string };
	/** Makes the child's CA this much slower per issuance. */
	issueDelayMs?: number;
}): Promise<RunnerExit> {
	const args = [
		"--import",
		"tsx",
		runner,
		input.dir,
		input.job,
		input.holder,
		String(input.now.getTime()),
		input.crashAt ?? "-",
		input.pdns ? JSON.stringify({ apiUrl: input.pdns.apiUrl, apiKey: input.pdns.apiKey }) : "-",
	];
	return new Promise((resolve, reject) => {
		const child = spawn(process.execPath, args, {
			stdio: ["ignore", "pipe", "pipe"],
			env: { ...process.env, CASTELLAN_TEST_ISSUE_DELAY_MS: String(input.issueDelayMs ?? 0) },
		});
		let out = "";
		let stdout = "";
		child.stdout.on("data", (d) => {
			out += d;
			stdout += d;
		});
		child.stderr.on("data", (d) => {
			out += d;
		});
		child.on("error", reject);
		child.on("exit", (code, signal) => {
			const line = stdout.trim().split("\n").at(-1);
			let result: Record<string, number> | undefined;
			try {
				result = line ? (JSON.parse(line) as Record<string, number>) : undefined;
			} catch {
				result = undefined;
			}
			resolve({ code, signal, out, ...(result ? { result } : {}) });
		});
	});
}
