import { createHash } from "node:crypto";
import { request as httpsRequest } from "node:https";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeEdge } from "../../edge/node/start-node-edge";
import {
	type EdgeFixture,
	type SingleTenantEdge,
	startSingleTenantEdge,
} from "./helpers/edge-fixture";
import { BLOCK, type TestOrigin } from "./helpers/test-origins";

const BLOCKS = 800; // 800 x 64 KiB = 50 MiB
const expectedSha256 = (() => {
	const hash = createHash("sha256");
	for (let i = 0; i < BLOCKS; i++) hash.update(BLOCK);
	return hash.digest("hex");
})();

describe("Node edge: streaming large bodies", () => {
	let running: SingleTenantEdge;
	let fx: EdgeFixture;
	let origin: TestOrigin;
	let edge: NodeEdge;
	let name: string;

	beforeAll(async () => {
		running = await startSingleTenantEdge("stream", "eu-1");
		({ fx, origin, edge, name } = running);
	});
	afterAll(async () => {
		await running?.close();
	});

	it("streams a 50 MiB response: the client has bytes before the origin has finished sending", async () => {
		const result = await new Promise<{ firstByteAt: number; bytes: number; sha256: string }>(
			(resolve, reject) => {
				const req = httpsRequest(
					{
						host: "127.0.0.1",
						port: edge.httpsPort,
						servername: name,
						ca: fx.caPem,
						path: `/download?blocks=${BLOCKS}`,
						headers: { host: name },
						agent: false,
					},
					(res) => {
						const hash = createHash("sha256");
						let firstByteAt = 0;
						let bytes = 0;
						res.on("data", (chunk: Buffer) => {
							firstByteAt ||= performance.now();
							bytes += chunk.length;
							hash.update(chunk);
						});
						res.on("end", () => resolve({ firstByteAt, bytes, sha256: hash.digest("hex") }));
						res.on("error", reject);
					},
				);
				req.on("error", reject);
				req.end();
			},
		);
		expect(result.bytes).toBe(BLOCKS * BLOCK.length);
		expect(result.sha256).toBe(expectedSha256);
		expect(origin.downloadFinishedAt).toBeDefined();
		// A proxy that buffered the whole body could only start sending after the origin finished.
		expect(result.firstByteAt).toBeLessThan(origin.downloadFinishedAt!);
	});

	it("streams a 50 MiB upload: the origin has bytes before the client has finished sending", async () => {
		let clientDoneAt = 0;
		let sent = 0;
		const body = new Readable({
			read() {
				if (sent === BLOCKS) {
					clientDoneAt = performance.now();
					this.push(null);
					return;
				}
				sent += 1;
				this.push(BLOCK);
			},
		});
		const answer = await new Promise<string>((resolve, reject) => {
			const req = httpsRequest(
				{
					host: "127.0.0.1",
					port: edge.httpsPort,
					servername: name,
					ca: fx.caPem,
					method: "PUT",
					path: "/upload",
					headers: { host: name },
					agent: false,
				},
				(res) => {
					let text = "";
					res.on("data", (c: Buffer) => {
						text += c.toString();
					});
					res.on("end", () => resolve(text));
				},
			);
			req.on("error", reject);
			body.pipe(req); // no content-length: chunked, the way a client streams an upload
		});
		expect(JSON.parse(answer)).toEqual({ bytes: BLOCKS * BLOCK.length, sha256: expectedSha256 });
		expect(origin.uploadFirstByteAt).toBeDefined();
		expect(origin.uploadFirstByteAt!).toBeLessThan(clientDoneAt);
	});
});
