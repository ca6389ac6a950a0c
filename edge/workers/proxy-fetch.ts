import type { Logger } from "../../functions/runtime";
import type { ProxyDecision } from "../core/decide";
import { forwardingHeaders, HeaderFilter } from "../core/forwarding-headers";
import type { SnapshotInstance } from "../core/route-snapshot";
import { type EdgeErrorReply, errorResponse } from "./error-response";

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);

export interface FetchProxyOptions {
	/** From sending the request to the instance's response headers; then 504. */
	upstreamTimeoutMs: number;
	logger: Logger;
}

type Attempt =
	| { kind: "response"; response: Response }
	| { kind: "unreachable"; reason: string }
	| { kind: "failed"; failure: EdgeErrorReply };

/**
 * Moves one request to the decided instance with `fetch` and streams the answer back; bytes
 * only, the routing was decided before. Mirrors the Node adapter's header rules, single retry
 * and 502/504 mapping, within what `fetch` can tell apart (see docs/adr/0007).
 */
export async function proxyWithFetch(
	request: Request,
	decision: ProxyDecision,
	requestId: string,
	options: FetchProxyOptions,
): Promise<Response> {
	const headers = upstreamHeaders(request, decision, requestId);
	// workerd gives a POST or PUT with Content-Length: 0 an empty stream; that is no body either.
	const body = request.headers.get("content-length") === "0" ? null : request.body;
	const websocket = isWebSocketUpgrade(request);
	// workerd proxies a WebSocket only when fetch is given the Upgrade header; the other
	// hop-by-hop headers stay out.
	if (websocket) headers.set("upgrade", "websocket");
	const exchange = { method: request.method, headers, body };
	let outcome = await send(exchange, decision.instance, decision.path, options);
	if (outcome.kind === "unreachable") {
		suspect(options.logger, decision.instance, outcome.reason, requestId);
		// A body is a stream read once: only a bodiless idempotent request can be sent again.
		const retriable = IDEMPOTENT.has(request.method) && body === null;
		const next = decision.alternatives[0];
		if (retriable && next) {
			outcome = await send(exchange, next, decision.path, options);
			if (outcome.kind === "unreachable") suspect(options.logger, next, outcome.reason, requestId);
		}
	}
	switch (outcome.kind) {
		case "unreachable":
			return errorResponse(
				{ status: 502, code: "bad_gateway", message: "the instance could not be reached" },
				requestId,
			);
		case "failed":
			return errorResponse(outcome.failure, requestId);
		case "response":
			return downstream(outcome.response, requestId, websocket);
	}
}

interface Exchange {
	method: string;
	headers: Headers;
	body: ReadableStream<Uint8Array> | null;
}

async function send(
	exchange: Exchange,
	instance: SnapshotInstance,
	path: string,
	options: FetchProxyOptions,
): Promise<Attempt> {
	let url: string;
	try {
		url = instanceUrl(instance.url, path);
	} catch {
		return { kind: "failed", failure: badGateway("the request could not be forwarded") };
	}
	// A timer of our own rather than AbortSignal.timeout(): it must stop once headers arrive,
	// or it would cut a long response body too.
	const controller = new AbortController();
	const timer = setTimeout(() => controller.abort(), options.upstreamTimeoutMs);
	try {
		const response = await fetch(url, {
			method: exchange.method,
			headers: exchange.headers,
			// Streamed as it arrives; workerd keeps the client's Content-Length when it sent one.
			body: exchange.body,
			redirect: "manual",
			signal: controller.signal,
		});
		return { kind: "response", response };
	} catch (err) {
		if (controller.signal.aborted) {
			return {
				kind: "failed",
				failure: {
					status: 504,
					code: "gateway_timeout",
					message: "the instance did not answer in time",
				},
			};
		}
		// fetch does not say why; a refused or reset connection is the usual cause.
		return { kind: "unreachable", reason: err instanceof Error ? err.message : String(err) };
	} finally {
		clearTimeout(timer);
	}
}

/** The client's headers minus hop-by-hop and edge-owned ones, plus the forwarding headers. */
export function upstreamHeaders(
	request: Request,
	decision: ProxyDecision,
	requestId: string,
): Headers {
	const headers = new Headers(request.headers);
	dropUnforwarded(
		headers,
		new HeaderFilter(request.headers.get("connection") ?? undefined, "request"),
	);
	const url = new URL(request.url);
	const forwarding = forwardingHeaders({
		// Cloudflare sets CF-Connecting-IP to the client's address; a client cannot forge it there.
		clientIp: request.headers.get("cf-connecting-ip") ?? "unknown",
		authority: decision.authority,
		proto: url.protocol === "http:" ? "http" : "https",
		requestId,
	});
	for (const [name, value] of forwarding) {
		// fetch derives Host from the instance URL; the instance reads X-Forwarded-Host/Forwarded.
		if (name !== "host") headers.set(name, value);
	}
	return headers;
}

function downstream(upstream: Response, requestId: string, websocket: boolean): Response {
	const headers = new Headers(upstream.headers);
	dropUnforwarded(
		headers,
		new HeaderFilter(upstream.headers.get("connection") ?? undefined, "response"),
	);
	headers.set("x-request-id", requestId);
	const webSocket = (upstream as Response & { webSocket?: unknown }).webSocket;
	if (websocket && upstream.status === 101 && webSocket) {
		// workerd's extension: the 101 hands the instance's socket to the client.
		return new Response(null, { status: 101, headers, webSocket } as ResponseInit);
	}
	return new Response(upstream.body, {
		status: upstream.status,
		statusText: upstream.statusText,
		headers,
	});
}

function dropUnforwarded(headers: Headers, filter: HeaderFilter): void {
	const names = new Set<string>();
	for (const [name] of headers) names.add(name);
	for (const name of names) if (!filter.keeps(name)) headers.delete(name);
}

function isWebSocketUpgrade(request: Request): boolean {
	return request.headers.get("upgrade")?.toLowerCase() === "websocket";
}

/** The instance URL's origin and path prefix, then the request's path and query. */
function instanceUrl(base: string, path: string): string {
	const url = new URL(base);
	const prefix = url.pathname === "/" ? "" : url.pathname.replace(/\/$/, "");
	return `${url.origin}${prefix}${path}`;
}

function suspect(
	logger: Logger,
	instance: SnapshotInstance,
	reason: string,
	requestId: string,
): void {
	// Workers cannot write the health state; the probes confirm, this line tells the operator.
	logger.log("warn", "edge: instance unreachable", {
		instanceId: instance.id,
		regionId: instance.regionId,
		reason,
		requestId,
	});
}

function badGateway(message: string): EdgeErrorReply {
	return { status: 502, code: "bad_gateway", message };
}
