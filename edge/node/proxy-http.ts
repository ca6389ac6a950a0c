import type { IncomingMessage, ServerResponse } from "node:http";
import type { ProxyDecision } from "../core/decide";
import { forwardingHeaders, HeaderFilter } from "../core/forwarding-headers";
import { sendError } from "./error-response";
import { exchangeWithInstance, type UpstreamContext } from "./upstream-exchange";

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);

/** Streams one request to the decided instance and its response back; bytes only, no routing. */
export function proxyHttp(
	ctx: UpstreamContext,
	req: IncomingMessage,
	res: ServerResponse,
	decision: ProxyDecision,
	requestId: string,
): void {
	const method = req.method ?? "GET";
	const contentLength = req.headers["content-length"];
	const chunked = contentLength === undefined && req.headers["transfer-encoding"] !== undefined;
	const hasBody = chunked || (contentLength !== undefined && contentLength !== "0");
	const headers = upstreamHeaders(req, decision, requestId);
	// Node does not frame a GET/DELETE/OPTIONS body by default: say chunked, or the body would be unframed.
	if (chunked) headers.push("transfer-encoding", "chunked");

	let bodyStarted = false;
	let clientGone = false;
	const abort = exchangeWithInstance(ctx, decision, {
		method,
		path: decision.path,
		headers,
		pooled: true,
		sendBody(request) {
			if (!hasBody) {
				request.end();
				return;
			}
			bodyStarted = true;
			req.pipe(request);
		},
		retriable: () => IDEMPOTENT.has(method) && !bodyStarted,
		clientGone: () => clientGone,
		onResponse(upstream) {
			res.writeHead(upstream.statusCode ?? 502, downstreamHeaders(upstream, requestId));
			upstream.pipe(res);
			// An instance that dies mid-body must not leave a response that looks complete.
			upstream.on("close", () => {
				if (!upstream.complete) res.destroy();
			});
			upstream.on("error", () => res.destroy());
		},
		onGiveUp(failure) {
			sendError(req, res, failure, requestId);
		},
	});
	res.on("close", () => {
		if (!res.writableFinished) {
			clientGone = true;
			abort();
		}
	});
	req.on("error", () => {
		clientGone = true;
		abort();
	});
}

/** The client's headers minus hop-by-hop and edge-owned ones, plus the forwarding headers. */
export function upstreamHeaders(
	req: IncomingMessage,
	decision: ProxyDecision,
	requestId: string,
): string[] {
	const filter = new HeaderFilter(req.headers.connection, "request");
	const out: string[] = [];
	const raw = req.rawHeaders;
	for (let i = 0; i < raw.length; i += 2) {
		if (filter.keeps(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
	}
	const forwarding = forwardingHeaders({
		clientIp: req.socket.remoteAddress ?? "unknown",
		authority: decision.authority,
		proto: "https",
		requestId,
	});
	for (const [name, value] of forwarding) out.push(name, value);
	return out;
}

/** The instance's headers minus hop-by-hop ones, plus the request id. */
export function downstreamHeaders(upstream: IncomingMessage, requestId: string): string[] {
	const filter = new HeaderFilter(upstream.headers.connection, "response");
	const out: string[] = [];
	const raw = upstream.rawHeaders;
	for (let i = 0; i < raw.length; i += 2) {
		if (filter.keeps(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
	}
	out.push("x-request-id", requestId);
	return out;
}
