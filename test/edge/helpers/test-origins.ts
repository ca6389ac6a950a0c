import { createHash } from "node:crypto";
import { createServer, type IncomingHttpHeaders } from "node:http";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { decodeFrame, encodeTextFrame, websocketAccept } from "./websocket-frames";

export interface SeenRequest {
	method: string;
	url: string;
	headers: IncomingHttpHeaders;
}

export interface TestOrigin {
	name: string;
	port: number;
	url: string;
	/** Every request (and upgrade) the origin received, in order. */
	seen: SeenRequest[];
	/** Set by /download once the last byte has been handed to the socket. */
	downloadFinishedAt?: number;
	/** Set by /upload when the first body byte arrives. */
	uploadFirstByteAt?: number;
	close(): Promise<void>;
}

/** 64 KiB of fixed pseudo-random bytes: the unit the large-body tests stream. */
export const BLOCK = Buffer.from(
	Array.from({ length: 64 * 1024 }, (_, i) => (i * 2654435761) >>> 24),
);

/**
 * A real HTTP origin on 127.0.0.1 with a few behaviours the edge tests need:
 * `/download?blocks=N` streams N blocks with backpressure, `/upload` hashes the body it reads,
 * `/hop` answers with hop-by-hop headers, a WebSocket upgrade echoes text frames, anything
 * else echoes the request as JSON.
 */
export async function startTestOrigin(name: string): Promise<TestOrigin> {
	const origin: TestOrigin = {
		name,
		port: 0,
		url: "",
		seen: [],
		close: async () => {},
	};
	const server = createServer((req, res) => {
		origin.seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers });
		const url = new URL(req.url ?? "/", "http://origin");
		if (url.pathname === "/download") {
			let left = Number(url.searchParams.get("blocks") ?? "1");
			res.writeHead(200, { "content-type": "application/octet-stream" });
			const pump = () => {
				while (left > 0) {
					left -= 1;
					if (!res.write(BLOCK)) return void res.once("drain", pump);
				}
				res.end(() => {
					origin.downloadFinishedAt = performance.now();
				});
			};
			pump();
			return;
		}
		if (url.pathname === "/upload") {
			const hash = createHash("sha256");
			let bytes = 0;
			req.on("data", (chunk: Buffer) => {
				origin.uploadFirstByteAt ??= performance.now();
				bytes += chunk.length;
				hash.update(chunk);
			});
			req.on("end", () => json(res, 200, { bytes, sha256: hash.digest("hex") }));
			return;
		}
		req.resume();
		if (url.pathname === "/hop") {
			res.setHeader("Connection", "X-Origin-Hop");
			res.setHeader("X-Origin-Hop", "secret");
			res.setHeader("Keep-Alive", "timeout=4, max=77");
			res.setHeader("X-Origin-Kept", "yes");
		}
		json(res, 200, { origin: name, method: req.method, url: req.url, headers: req.headers });
	});
	// Upgraded sockets are no longer the HTTP server's to close.
	const upgraded = new Set<Socket>();
	server.on("upgrade", (req, socket: Socket, head: Buffer) => {
		upgraded.add(socket);
		socket.on("close", () => upgraded.delete(socket));
		origin.seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers });
		const key = req.headers["sec-websocket-key"];
		if (req.headers.upgrade?.toLowerCase() !== "websocket" || typeof key !== "string") {
			socket.end("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
			return;
		}
		socket.write(
			"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				`Sec-WebSocket-Accept: ${websocketAccept(key)}\r\n\r\n`,
		);
		let buffered = head;
		const onData = (chunk: Buffer) => {
			buffered = Buffer.concat([buffered, chunk]);
			for (let frame = decodeFrame(buffered); frame; frame = decodeFrame(buffered)) {
				buffered = buffered.subarray(frame.length);
				if (frame.opcode === 0x1) socket.write(encodeTextFrame(`${name}:${frame.text}`, false));
				if (frame.opcode === 0x8) socket.end();
			}
		};
		socket.on("data", onData);
		socket.on("end", () => socket.end());
		socket.on("error", () => socket.destroy());
		if (head.length > 0) onData(Buffer.alloc(0));
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const address = server.address();
	origin.port = typeof address === "object" && address ? address.port : 0;
	origin.url = `http://127.0.0.1:${origin.port}`;
	origin.close = () =>
		new Promise<void>((resolve) => {
			for (const socket of upgraded) socket.destroy();
			server.close(() => resolve());
			server.closeAllConnections();
		});
	return origin;
}

function json(res: import("node:http").ServerResponse, status: number, body: unknown): void {
	const text = JSON.stringify(body);
	res.writeHead(status, {
		"content-type": "application/json",
		"content-length": Buffer.byteLength(text),
	});
	res.end(text);
}

/** An origin that accepts connections and reads requests but never answers. */
export async function startSilentOrigin(): Promise<{
	url: string;
	accepted: () => number;
	close(): Promise<void>;
}> {
	const sockets = new Set<Socket>();
	let accepted = 0;
	const server: NetServer = createNetServer((socket) => {
		accepted += 1;
		sockets.add(socket);
		socket.resume();
		socket.on("error", () => {});
		socket.on("close", () => sockets.delete(socket));
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const address = server.address();
	const port = typeof address === "object" && address ? address.port : 0;
	return {
		url: `http://127.0.0.1:${port}`,
		accepted: () => accepted,
		close: () =>
			new Promise<void>((resolve) => {
				for (const s of sockets) s.destroy();
				server.close(() => resolve());
			}),
	};
}

/** A loopback port nothing listens on (it was free a moment ago): connecting is refused. */
export async function closedPortUrl(): Promise<string> {
	const server = createNetServer();
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const address = server.address();
	const port = typeof address === "object" && address ? address.port : 0;
	await new Promise<void>((resolve) => server.close(() => resolve()));
	return `http://127.0.0.1:${port}`;
}

/** An origin that accepts a connection, then resets it as soon as the request arrives. */
export async function startResettingOrigin(): Promise<{ url: string; close(): Promise<void> }> {
	const server: NetServer = createNetServer((socket) => {
		socket.on("error", () => {});
		socket.once("data", () => socket.resetAndDestroy());
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const address = server.address();
	const port = typeof address === "object" && address ? address.port : 0;
	return {
		url: `http://127.0.0.1:${port}`,
		close: () => new Promise<void>((resolve) => server.close(() => resolve())),
	};
}
