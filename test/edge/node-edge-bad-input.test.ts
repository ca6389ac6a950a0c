import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type NodeEdge, startNodeEdge } from "../../edge/node/start-node-edge";
import { httpsCall, rawTcp, rawTls, statusOf } from "./helpers/edge-clients";
import { createEdgeFixture, type EdgeFixture } from "./helpers/edge-fixture";
import { seedInstance, seedRoute, seedTenant, uniqueId } from "./helpers/seed";
import { startTestOrigin, type TestOrigin } from "./helpers/test-origins";

describe("Node edge: bad input", () => {
	let fx: EdgeFixture;
	let origin: TestOrigin;
	let edge: NodeEdge;
	let name: string;
	let other: string;

	beforeAll(async () => {
		fx = await createEdgeFixture();
		origin = await startTestOrigin("eu-1");
		const tenantId = await seedTenant(fx.eu);
		const otherTenant = await seedTenant(fx.eu);
		await seedInstance(fx.eu, { url: origin.url });
		name = `${uniqueId("bad").replace(/_/g, "-")}.example.net`;
		other = `${uniqueId("other").replace(/_/g, "-")}.example.net`;
		await seedRoute(fx.eu, fx, { hostname: name, tenantId });
		await seedRoute(fx.eu, fx, { hostname: other, tenantId: otherTenant });
		edge = await startNodeEdge({
			store: fx.temp.store,
			secrets: fx.secrets,
			httpsPort: 0,
			httpPort: 0,
			host: "127.0.0.1",
			maxHeaderSize: 8 * 1024,
		});
	});
	afterAll(async () => {
		await edge?.close();
		await origin?.close();
		fx?.close();
	});

	const send = (payload: string) =>
		rawTls(edge.httpsPort, { servername: name, ca: fx.caPem, payload });
	const errorCode = (raw: string) =>
		(JSON.parse(raw.slice(raw.indexOf("\r\n\r\n") + 4)) as { error: { code: string } }).error.code;

	it("answers oversized headers with 431", async () => {
		const raw = await send(
			`GET / HTTP/1.1\r\nHost: ${name}\r\nX-Big: ${"a".repeat(10_000)}\r\n\r\n`,
		);
		expect(statusOf(raw)).toBe(431);
		expect(errorCode(raw)).toBe("request_header_fields_too_large");
	});

	it.each([
		["a space", "Host: bad host.example.net"],
		["an empty label", "Host: bad..example.net"],
		["a bad port", "Host: HOST:http"],
		["two Host headers", "Host: HOST\r\nHost: OTHER"],
		["no Host header", ""],
	])("answers a Host with %s with 400, in the JSON error shape", async (_label, hostLines) => {
		const lines = hostLines.replace("HOST", name).replace("OTHER", other);
		const raw = await send(
			`GET / HTTP/1.1\r\n${lines ? `${lines}\r\n` : ""}Connection: close\r\n\r\n`,
		);
		expect(statusOf(raw)).toBe(400);
		expect(errorCode(raw)).toBe("bad_request");
		expect(raw.toLowerCase()).toContain("x-request-id:");
	});

	it("routes an absolute-form target by its authority: another tenant's is 421, its own is proxied", async () => {
		const before = origin.seen.length;
		const hijack = await send(
			`GET http://${other}/steal HTTP/1.1\r\nHost: ${name}\r\nConnection: close\r\n\r\n`,
		);
		expect(statusOf(hijack)).toBe(421);
		const outside = await send(
			`GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: ${name}\r\nConnection: close\r\n\r\n`,
		);
		expect(statusOf(outside)).toBe(421);
		expect(origin.seen.length).toBe(before);

		const own = await send(
			`GET https://${name}/mine?q=1 HTTP/1.1\r\nHost: ignored.example\r\nConnection: close\r\n\r\n`,
		);
		expect(statusOf(own)).toBe(200);
		expect(origin.seen.at(-1)).toMatchObject({ url: "/mine?q=1", headers: { host: name } });
	});

	it.each([
		[
			"a CR inside a header value",
			`GET / HTTP/1.1\r\nHost: NAME\r\nX-Evil: a\rInjected: 1\r\n\r\n`,
		],
		["a bare LF line", `GET / HTTP/1.1\r\nHost: NAME\nX-Evil: a\r\n\r\n`],
		["a NUL in a header value", `GET / HTTP/1.1\r\nHost: NAME\r\nX-Evil: a\u0000b\r\n\r\n`],
		["a space before the colon", `GET / HTTP/1.1\r\nHost: NAME\r\nX-Evil : a\r\n\r\n`],
		[
			"Content-Length and Transfer-Encoding together",
			`POST / HTTP/1.1\r\nHost: NAME\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
		],
		["an unknown method", `FOO / HTTP/1.1\r\nHost: NAME\r\n\r\n`],
		["a garbage request line", `\u0001\u0002 not http\r\n\r\n`],
	])("rejects %s with a clean 400", async (_label, payload) => {
		const before = origin.seen.length;
		const raw = await send(payload.replaceAll("NAME", name));
		expect(statusOf(raw)).toBe(400);
		expect(errorCode(raw)).toBe("bad_request");
		expect(origin.seen.length).toBe(before);
	});

	it.each(["CONNECT", "TRACE"])("refuses %s with 405", async (method) => {
		const target = method === "CONNECT" ? `${name}:443` : "/";
		const raw = await send(
			`${method} ${target} HTTP/1.1\r\nHost: ${name}\r\nConnection: close\r\n\r\n`,
		);
		expect(statusOf(raw)).toBe(405);
		expect(errorCode(raw)).toBe("method_not_allowed");
	});

	it("frames a chunked body on a DELETE, so it cannot be smuggled past the origin's parser", async () => {
		const raw = await send(
			`DELETE /upload HTTP/1.1\r\nHost: ${name}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
		);
		expect(statusOf(raw)).toBe(200);
		expect(raw).toContain('"bytes":5');
	});

	it("answers garbage on the HTTP listener with 400 too", async () => {
		const raw = await rawTcp(edge.httpPort, "GET / HTTP/1.1\r\nHost: a\r\nX: \u0000\r\n\r\n");
		expect(statusOf(raw)).toBe(400);
	});

	it("is still serving after all of the above", async () => {
		const res = await httpsCall(edge.httpsPort, { servername: name, ca: fx.caPem });
		expect(res.status).toBe(200);
	});
});
