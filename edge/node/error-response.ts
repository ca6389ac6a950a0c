import { type IncomingMessage, type ServerResponse, STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import { type EdgeErrorCode, edgeErrorBody } from "../core/edge-error";

export interface EdgeErrorReply {
	status: number;
	code: EdgeErrorCode;
	message: string;
	retryAfter?: number | undefined;
}

/** Answers with the shared JSON error shape; a response already under way is cut instead. */
export function sendError(
	req: IncomingMessage,
	res: ServerResponse,
	reply: EdgeErrorReply,
	requestId: string,
): void {
	if (res.headersSent) {
		res.destroy();
		return;
	}
	const body = edgeErrorBody(reply.code, reply.message, requestId);
	const headers: Record<string, string | number> = {
		"content-type": "application/json",
		"content-length": Buffer.byteLength(body),
		"cache-control": "no-store",
		"x-request-id": requestId,
	};
	if (reply.retryAfter !== undefined) headers["retry-after"] = reply.retryAfter;
	// An unread request body would otherwise be drained to keep the connection: close it instead.
	if (!req.complete) headers["connection"] = "close";
	res.writeHead(reply.status, headers);
	res.end(body);
}

/**
 * Writes a whole response on a raw socket (client errors, refused upgrades), then closes it.
 * `headers` must hold only values the edge produced itself, never client input.
 */
export function writeRawResponse(
	socket: Duplex,
	status: number,
	headers: Array<[string, string]>,
	body = "",
): void {
	if (!socket.writable) {
		socket.destroy();
		return;
	}
	let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\n`;
	for (const [name, value] of headers) head += `${name}: ${value}\r\n`;
	head += `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n`;
	socket.end(head + body);
}

export function writeRawError(socket: Duplex, reply: EdgeErrorReply, requestId: string): void {
	const headers: Array<[string, string]> = [
		["content-type", "application/json"],
		["cache-control", "no-store"],
		["x-request-id", requestId],
	];
	if (reply.retryAfter !== undefined) headers.push(["retry-after", String(reply.retryAfter)]);
	writeRawResponse(
		socket,
		reply.status,
		headers,
		edgeErrorBody(reply.code, reply.message, requestId),
	);
}
