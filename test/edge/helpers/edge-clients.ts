import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect as netConnect } from "node:net";
import type { Readable } from "node:stream";
import { type PeerCertificate, connect as tlsConnect } from "node:tls";

export interface EdgeResponse {
	status: number;
	headers: IncomingHttpHeaders;
	body: Buffer;
	text: string;
	peer?: PeerCertificate;
}

export interface HttpsCall {
	/** TLS server name, and the Host header unless `host` is given. */
	servername: string;
	ca: string;
	host?: string;
	method?: string;
	path?: string;
	headers?: Record<string, string>;
	body?: string | Buffer | Readable;
}

/** One HTTPS request through the edge on a fresh connection, body collected. */
export function httpsCall(port: number, call: HttpsCall): Promise<EdgeResponse> {
	return new Promise((resolve, reject) => {
		const req = httpsRequest(
			{
				host: "127.0.0.1",
				port,
				servername: call.servername,
				ca: call.ca,
				method: call.method ?? "GET",
				path: call.path ?? "/",
				headers: { host: call.host ?? call.servername, ...call.headers },
				agent: false,
			},
			(res) => {
				const peer = (res.socket as import("node:tls").TLSSocket).getPeerCertificate();
				const chunks: Buffer[] = [];
				res.on("data", (c: Buffer) => chunks.push(c));
				res.on("error", reject);
				res.on("end", () => {
					const body = Buffer.concat(chunks);
					resolve({
						status: res.statusCode ?? 0,
						headers: res.headers,
						body,
						text: body.toString(),
						peer,
					});
				});
			},
		);
		req.on("error", reject);
		const body = call.body;
		if (body === undefined) req.end();
		else if (typeof body === "string" || Buffer.isBuffer(body)) req.end(body);
		else body.pipe(req);
	});
}

/** A plain-HTTP request (for the redirecting listener). */
export function httpCall(
	port: number,
	call: { host: string; path?: string; method?: string },
): Promise<EdgeResponse> {
	return new Promise((resolve, reject) => {
		const req = httpRequest(
			{
				host: "127.0.0.1",
				port,
				method: call.method ?? "GET",
				path: call.path ?? "/",
				headers: { host: call.host },
				agent: false,
			},
			(res) => {
				const chunks: Buffer[] = [];
				res.on("data", (c: Buffer) => chunks.push(c));
				res.on("end", () => {
					const body = Buffer.concat(chunks);
					resolve({
						status: res.statusCode ?? 0,
						headers: res.headers,
						body,
						text: body.toString(),
					});
				});
			},
		);
		req.on("error", reject);
		req.end();
	});
}

/** Writes bytes as they are on a TLS connection and returns everything read until it closes. */
export function rawTls(
	port: number,
	options: { servername: string; ca: string; payload: string | Buffer },
): Promise<string> {
	return new Promise((resolve, reject) => {
		const socket = tlsConnect(
			{ host: "127.0.0.1", port, servername: options.servername, ca: options.ca },
			() => socket.write(options.payload),
		);
		collect(socket, resolve, reject);
	});
}

/** The same on a plain TCP connection. */
export function rawTcp(port: number, payload: string | Buffer): Promise<string> {
	return new Promise((resolve, reject) => {
		const socket = netConnect({ host: "127.0.0.1", port }, () => socket.write(payload));
		collect(socket, resolve, reject);
	});
}

function collect(
	socket: import("node:net").Socket,
	resolve: (text: string) => void,
	reject: (err: Error) => void,
): void {
	const chunks: Buffer[] = [];
	socket.on("data", (c: Buffer) => chunks.push(c));
	socket.on("error", (err) =>
		chunks.length > 0 ? resolve(Buffer.concat(chunks).toString()) : reject(err),
	);
	socket.on("close", () => resolve(Buffer.concat(chunks).toString()));
}

/**
 * Only the TLS handshake, accepting any certificate, so `ok: false` means the server refused
 * the handshake, not that the client disliked what it was shown.
 */
export function handshake(
	port: number,
	servername: string | undefined,
): Promise<{ ok: true; peer: PeerCertificate } | { ok: false; error: Error }> {
	return new Promise((resolve) => {
		const options = {
			host: "127.0.0.1",
			port,
			rejectUnauthorized: false,
			...(servername ? { servername } : {}),
		};
		const socket = tlsConnect(options, () => {
			const peer = socket.getPeerCertificate();
			socket.end();
			resolve({ ok: true, peer });
		});
		socket.on("error", (error) => resolve({ ok: false, error }));
	});
}

/** Status code of the first response in a raw HTTP answer. */
export function statusOf(raw: string): number {
	const match = /^HTTP\/1\.1 (\d{3})/.exec(raw);
	return match ? Number(match[1]) : 0;
}
