import type { ClientRequest, IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { ProxyDecision } from "../core/decide";
import type { SnapshotInstance } from "../core/route-snapshot";
import type { InstanceAgents } from "./instance-agents";

export interface EdgeTimeouts {
	/** TCP connect to an instance. */
	connectMs: number;
	/** From the request fully sent to the instance's response headers. */
	responseMs: number;
	/** No bytes either way on an instance connection, while a request is in flight. */
	idleMs: number;
	/** For a client to send its request headers (slow-loris guard). */
	clientHeadersMs: number;
}

export const DEFAULT_TIMEOUTS: EdgeTimeouts = {
	connectMs: 5_000,
	responseMs: 30_000,
	idleMs: 60_000,
	clientHeadersMs: 30_000,
};

export interface UpstreamContext {
	agents: InstanceAgents;
	timeouts: EdgeTimeouts;
	onInstanceSuspect(instanceId: string): void;
}

/** Why no instance answered; the adapter turns it into a 502 or 504. */
export interface UpstreamFailure {
	status: 502 | 504;
	code: "bad_gateway" | "gateway_timeout";
	message: string;
}

/** One request to send, and what to do with what comes back. */
export interface UpstreamExchange {
	method: string;
	path: string;
	/** Flat [name, value, ...] list, as `rawHeaders`. */
	headers: string[];
	/** Upgrades take the connection out of any pool, so they get a connection of their own. */
	pooled: boolean;
	/** Called once the connection is up: write and end the body. */
	sendBody(request: ClientRequest): void;
	/** Whether a failed attempt may be repeated: idempotent, and no body byte sent yet. */
	retriable(): boolean;
	/** True once the client has gone: a failure then needs no answer and no retry. */
	clientGone(): boolean;
	onResponse(response: IncomingMessage): void;
	onUpgrade?(response: IncomingMessage, socket: Duplex, head: Buffer): void;
	onGiveUp(failure: UpstreamFailure): void;
}

class UpstreamTimeout extends Error {
	constructor(readonly phase: "connect" | "response" | "idle") {
		super(`instance ${phase} timeout`);
	}
}

// Failures where the instance (or the path to it) is at fault and the request was not processed.
const CONNECTION_FAILURES = new Set([
	"ECONNREFUSED",
	"ECONNRESET",
	"ECONNABORTED",
	"EHOSTUNREACH",
	"ENETUNREACH",
	"EPIPE",
	"ETIMEDOUT",
	"ENOTFOUND",
	"EAI_AGAIN",
]);

interface Classified extends UpstreamFailure {
	/** A connection failure: the request may be retried elsewhere. */
	connection: boolean;
	/** Report the instance to the health state. */
	suspect: boolean;
}

/**
 * Sends the exchange to the decision's instance; after a connection failure of a retriable
 * request, once more to the first alternative. Returns a function that aborts whatever attempt
 * is in flight (the client went away).
 */
export function exchangeWithInstance(
	ctx: UpstreamContext,
	decision: ProxyDecision,
	exchange: UpstreamExchange,
): () => void {
	let current: ClientRequest | undefined;

	const attempt = (instance: SnapshotInstance, isRetry: boolean) => {
		const target = ctx.agents.get(instance);
		let settled = false;
		let connectTimer: ReturnType<typeof setTimeout> | undefined;
		let responseTimer: ReturnType<typeof setTimeout> | undefined;
		const clearTimers = () => {
			clearTimeout(connectTimer);
			clearTimeout(responseTimer);
		};
		let request: ClientRequest;
		try {
			request = target.request({
				host: target.hostname,
				port: target.port,
				method: exchange.method,
				path: exchange.path === "*" ? "*" : target.basePath + exchange.path,
				headers: exchange.headers,
				agent: exchange.pooled ? target.agent : false,
			});
		} catch {
			// Node validates what it sends more strictly than what it accepts: never crash on it.
			exchange.onGiveUp(badGateway("the request could not be forwarded"));
			return;
		}
		current = request;
		request.on("socket", (socket) => {
			if (!socket.connecting) return exchange.sendBody(request);
			connectTimer = setTimeout(
				() => request.destroy(new UpstreamTimeout("connect")),
				ctx.timeouts.connectMs,
			);
			// The body waits for the connection, so a refused connection leaves it unread and retriable.
			socket.once("connect", () => {
				clearTimeout(connectTimer);
				exchange.sendBody(request);
			});
		});
		request.on("finish", () => {
			if (settled) return;
			responseTimer = setTimeout(
				() => request.destroy(new UpstreamTimeout("response")),
				ctx.timeouts.responseMs,
			);
		});
		request.setTimeout(ctx.timeouts.idleMs, () => request.destroy(new UpstreamTimeout("idle")));
		request.on("response", (response) => {
			settled = true;
			clearTimers();
			try {
				exchange.onResponse(response);
			} catch {
				// E.g. a response header Node refuses to write back: answer 502, do not crash.
				request.destroy();
				exchange.onGiveUp(badGateway("the instance's response could not be forwarded"));
			}
		});
		if (exchange.onUpgrade) {
			const onUpgrade = exchange.onUpgrade;
			request.on("upgrade", (response, socket, head) => {
				settled = true;
				clearTimers();
				// A WebSocket may idle for long; from here on its lifetime is the client's.
				socket.setTimeout(0);
				onUpgrade(response, socket, head);
			});
		}
		request.on("close", clearTimers);
		request.on("error", (err) => {
			clearTimers();
			// After the response started, the response stream reports the failure to the client.
			if (settled) return;
			settled = true;
			if (exchange.clientGone()) return;
			const failure = classify(err, request.reusedSocket);
			if (failure.suspect) ctx.onInstanceSuspect(instance.id);
			if (failure.connection && !isRetry && exchange.retriable()) {
				// A reset on a reused keep-alive socket is usually a stale connection, not a dead instance.
				const next = decision.alternatives[0] ?? (failure.suspect ? undefined : instance);
				if (next) return attempt(next, true);
			}
			exchange.onGiveUp(failure);
		});
	};

	attempt(decision.instance, false);
	return () => current?.destroy();
}

function classify(err: Error, reusedSocket: boolean): Classified {
	if (err instanceof UpstreamTimeout) {
		return err.phase === "connect"
			? {
					...timeout("the instance did not accept the connection in time"),
					connection: true,
					suspect: true,
				}
			: { ...timeout("the instance did not answer in time"), connection: false, suspect: false };
	}
	const code = (err as NodeJS.ErrnoException).code ?? "";
	if (CONNECTION_FAILURES.has(code)) {
		const stale = reusedSocket && code === "ECONNRESET";
		return {
			...badGateway("the instance could not be reached"),
			connection: true,
			suspect: !stale,
		};
	}
	return { ...badGateway("the instance failed"), connection: false, suspect: false };
}

function timeout(message: string): UpstreamFailure {
	return { status: 504, code: "gateway_timeout", message };
}

function badGateway(message: string): UpstreamFailure {
	return { status: 502, code: "bad_gateway", message };
}
