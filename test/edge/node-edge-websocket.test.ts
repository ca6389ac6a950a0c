import { type TLSSocket, connect as tlsConnect } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeEdge } from "../../edge/node/start-node-edge";
import { statusOf } from "./helpers/edge-clients";
import {
	type EdgeFixture,
	type SingleTenantEdge,
	startSingleTenantEdge,
} from "./helpers/edge-fixture";
import type { TestOrigin } from "./helpers/test-origins";
import { decodeFrame, encodeTextFrame, websocketAccept } from "./helpers/websocket-frames";

/** Reads from the socket until `done` finds what it needs in everything read so far. */
function readUntil<T>(socket: TLSSocket, done: (data: Buffer) => T | undefined): Promise<T> {
	return new Promise((resolve, reject) => {
		let data = Buffer.alloc(0);
		const onData = (chunk: Buffer) => {
			data = Buffer.concat([data, chunk]);
			const result = done(data);
			if (result !== undefined) {
				socket.off("data", onData);
				resolve(result);
			}
		};
		socket.on("data", onData);
		socket.once("error", reject);
		socket.once("close", () => reject(new Error(`closed after: ${data.toString()}`)));
	});
}

describe("Node edge: WebSocket pass-through", () => {
	let running: SingleTenantEdge;
	let fx: EdgeFixture;
	let origin: TestOrigin;
	let edge: NodeEdge;
	let name: string;

	beforeAll(async () => {
		running = await startSingleTenantEdge("ws", "eu-ws");
		({ fx, origin, edge, name } = running);
	});
	afterAll(async () => {
		await running?.close();
	});

	const connect = () =>
		new Promise<TLSSocket>((resolve, reject) => {
			const socket = tlsConnect(
				{ host: "127.0.0.1", port: edge.httpsPort, servername: name, ca: fx.caPem },
				() => resolve(socket),
			);
			socket.once("error", reject);
		});

	it("upgrades through the edge and echoes frames both ways", async () => {
		const socket = await connect();
		const key = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64");
		socket.write(
			`GET /chat?room=1 HTTP/1.1\r\nHost: ${name}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
				`Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n`,
		);
		const head = await readUntil(socket, (data) => {
			const end = data.indexOf("\r\n\r\n");
			return end < 0 ? undefined : data.subarray(0, end).toString();
		});
		expect(statusOf(head)).toBe(101);
		expect(head.toLowerCase()).toContain(
			`sec-websocket-accept: ${websocketAccept(key).toLowerCase()}`,
		);
		expect(head.toLowerCase()).toMatch(/\r\nupgrade: websocket/);

		for (const text of ["hello", "second frame"]) {
			const reply = readUntil(socket, (data) => {
				const start = data.indexOf("\r\n\r\n");
				const frames =
					start >= 0 && data.subarray(0, start).toString().startsWith("HTTP/")
						? data.subarray(start + 4)
						: data;
				return decodeFrame(frames)?.text;
			});
			socket.write(encodeTextFrame(text, true));
			expect(await reply).toBe(`eu-ws:${text}`);
		}
		socket.destroy();

		const seen = origin.seen.at(-1)!;
		expect(seen.url).toBe("/chat?room=1");
		expect(seen.headers["x-forwarded-for"]).toBe("127.0.0.1");
		expect(seen.headers["x-forwarded-proto"]).toBe("https");
	});

	it("relays the origin's refusal of an upgrade and closes", async () => {
		const socket = await connect();
		socket.write(
			`GET / HTTP/1.1\r\nHost: ${name}\r\nUpgrade: not-websocket\r\nConnection: Upgrade\r\n\r\n`,
		);
		const text = await new Promise<string>((resolve) => {
			let all = "";
			socket.on("data", (c: Buffer) => {
				all += c.toString();
			});
			socket.on("close", () => resolve(all));
		});
		expect(statusOf(text)).toBe(400);
	});

	it("answers an upgrade for another host than the SNI with 421, without reaching the origin", async () => {
		const before = origin.seen.length;
		const socket = await connect();
		socket.write(
			`GET / HTTP/1.1\r\nHost: other.example.net\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x\r\n\r\n`,
		);
		const text = await new Promise<string>((resolve) => {
			let all = "";
			socket.on("data", (c: Buffer) => {
				all += c.toString();
			});
			socket.on("close", () => resolve(all));
		});
		expect(statusOf(text)).toBe(421);
		expect(text).toContain('"misdirected_request"');
		expect(origin.seen.length).toBe(before);
	});
});
