import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { ProxyDecision } from "../core/decide";
import { HeaderFilter } from "../core/forwarding-headers";
import { writeRawError } from "./error-response";
import { downstreamHeaders, upstreamHeaders } from "./proxy-http";
import { exchangeWithInstance, type UpstreamContext } from "./upstream-exchange";

/**
 * Passes an upgrade (WebSocket) through: the handshake goes to the instance like any request;
 * once it answers 101, the two sockets are piped to each other and the edge stops looking.
 */
export function proxyUpgrade(
	ctx: UpstreamContext,
	req: IncomingMessage,
	client: Duplex,
	head: Buffer,
	decision: ProxyDecision,
	requestId: string,
): void {
	const headers = upstreamHeaders(req, decision, requestId);
	// Upgrade and Connection are hop-by-hop, except on the hop that asks for the upgrade.
	headers.push("connection", "upgrade", "upgrade", req.headers.upgrade ?? "");

	let clientGone = false;
	let upgraded = false;
	const abort = exchangeWithInstance(ctx, decision, {
		method: req.method ?? "GET",
		path: decision.path,
		headers,
		pooled: false,
		sendBody: (request) => request.end(),
		retriable: () => req.method === "GET",
		clientGone: () => clientGone,
		onUpgrade(response, upstream, upstreamHead) {
			upgraded = true;
			const filter = new HeaderFilter(response.headers.connection, "response");
			let block = "HTTP/1.1 101 Switching Protocols\r\n";
			const raw = response.rawHeaders;
			for (let i = 0; i < raw.length; i += 2) {
				if (filter.keeps(raw[i]!.toLowerCase())) block += `${raw[i]}: ${raw[i + 1]}\r\n`;
			}
			block += `connection: upgrade\r\nupgrade: ${response.headers.upgrade ?? ""}\r\nx-request-id: ${requestId}\r\n\r\n`;
			const closeBoth = () => {
				client.destroy();
				upstream.destroy();
			};
			upstream.on("error", closeBoth);
			upstream.on("close", closeBoth);
			client.on("close", closeBoth);
			client.write(block);
			if (upstreamHead.length > 0) client.write(upstreamHead);
			if (head.length > 0) upstream.write(head);
			upstream.pipe(client);
			client.pipe(upstream);
		},
		onResponse(response) {
			// The instance refused the upgrade: relay its answer, then close (the body is unframed now).
			let block = `HTTP/1.1 ${response.statusCode ?? 502} ${response.statusMessage ?? ""}\r\n`;
			const out = downstreamHeaders(response, requestId);
			for (let i = 0; i < out.length; i += 2) block += `${out[i]}: ${out[i + 1]}\r\n`;
			client.write(`${block}connection: close\r\n\r\n`);
			response.pipe(client);
			response.on("error", () => client.destroy());
		},
		onGiveUp(failure) {
			writeRawError(client, failure, requestId);
		},
	});
	client.on("error", () => {
		clientGone = true;
		abort();
	});
	client.on("close", () => {
		clientGone = true;
		if (!upgraded) abort();
	});
}
