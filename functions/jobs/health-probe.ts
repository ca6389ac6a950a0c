/** What a probe checks: the node's health URL, or else a TCP connect to its instances. */
export interface ProbeTarget {
	nodeId: string;
	healthUrl: string | null;
	/** Instance base URLs on the node (the TCP probe's `host:port`s). */
	instanceUrls: string[];
}

export type ProbeResult =
	| { ok: true }
	| { ok: false; error: string }
	/** The probe could not run here (no TCP in this runtime): the node's counters are left as they are. */
	| { ok: "skipped"; reason: string };

export type Prober = (target: ProbeTarget) => Promise<ProbeResult>;

/**
 * Opens a TCP connection and closes it again; rejects when it is refused or takes longer than
 * `timeoutMs`. Node: `net.connect` (functions/node/scheduler-host.ts); Workers: `cloudflare:sockets`.
 */
export type TcpConnect = (host: string, port: number, timeoutMs: number) => Promise<void>;

export interface ProberOptions {
	/** Per probe; default 2 s, well below the 10 s interval so a slow node cannot stall a cycle. */
	timeoutMs?: number;
	fetch?: typeof fetch;
	/** Absent: nodes without a health URL are skipped (logged), never marked down. */
	tcpConnect?: TcpConnect;
}

export const DEFAULT_PROBE_TIMEOUT_MS = 2_000;

/**
 * HTTP(S) GET to the health URL: any 2xx or 3xx within the timeout is a success (redirects are
 * not followed: a health endpoint that redirects is up). Without a health URL, a TCP connect to
 * the node's instances: one that accepts is enough, as the edge retries another on failure.
 */
export function createProber(options: ProberOptions = {}): Prober {
	const timeoutMs = options.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
	const send = options.fetch ?? fetch;
	return async (target) => {
		if (target.healthUrl) return httpProbe(send, target.healthUrl, timeoutMs);
		if (!options.tcpConnect) {
			return { ok: "skipped", reason: "no health URL and no TCP connect in this runtime" };
		}
		if (target.instanceUrls.length === 0) return { ok: false, error: "node has no instances" };
		const errors: string[] = [];
		for (const url of target.instanceUrls) {
			const address = tcpAddress(url);
			if (!address) {
				errors.push(`${url}: not an http(s) URL`);
				continue;
			}
			try {
				await options.tcpConnect(address.host, address.port, timeoutMs);
				return { ok: true };
			} catch (err) {
				errors.push(`tcp ${address.host}:${address.port}: ${message(err)}`);
			}
		}
		return { ok: false, error: errors.join("; ") };
	};
}

async function httpProbe(send: typeof fetch, url: string, timeoutMs: number): Promise<ProbeResult> {
	try {
		const response = await send(url, {
			method: "GET",
			redirect: "manual",
			headers: { "user-agent": "castellan-health-probe/1" },
			signal: AbortSignal.timeout(timeoutMs),
		});
		// The body is not needed; cancelling it frees the connection for the next probe.
		await response.body?.cancel().catch(() => {});
		if (response.status >= 200 && response.status < 400) return { ok: true };
		return { ok: false, error: `GET ${url} answered ${response.status}` };
	} catch (err) {
		const reason =
			err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")
				? `no answer within ${timeoutMs} ms`
				: message(err);
		return { ok: false, error: `GET ${url}: ${reason}` };
	}
}

function tcpAddress(url: string): { host: string; port: number } | undefined {
	try {
		const u = new URL(url);
		if (u.protocol !== "http:" && u.protocol !== "https:") return undefined;
		const port = u.port ? Number(u.port) : u.protocol === "https:" ? 443 : 80;
		return { host: u.hostname.replace(/^\[|\]$/g, ""), port };
	} catch {
		return undefined;
	}
}

function message(err: unknown): string {
	if (err instanceof Error) {
		const cause = (err as { cause?: unknown }).cause;
		const code = (cause as { code?: string } | undefined)?.code ?? (err as { code?: string }).code;
		return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
	}
	return String(err);
}
