import { createHash } from "node:crypto";
import { request } from "node:http";
import { connect, type Socket } from "node:net";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { publishRouteSnapshot } from "../../functions/services/publish-route-snapshot";
import {
	BLOCK,
	closedPortUrl,
	startSilentOrigin,
	startTestOrigin,
	type TestOrigin,
} from "../edge/helpers/test-origins";
import { decodeFrame, encodeTextFrame, websocketAccept } from "../edge/helpers/websocket-frames";
import { createTestPlatform, type TestPlatform } from "../helpers/test-platform";
import { ControlPlane } from "./helpers/control-plane";
import { call, errorOf } from "./helpers/http-call";
import { runInWorkerd, type WorkerdInstance } from "./helpers/run-in-workerd";
import { bundleWorker, type WorkerBundle } from "./helpers/wrangler-bundle";

/** What the test origins echo for an ordinary request. */
interface Echo {
	origin: string;
	method: string;
	url: string;
	headers: Record<string, string>;
}

const sha256 = (blocks: number) => {
	const hash = createHash("sha256");
	for (let i = 0; i < blocks; i++) hash.update(BLOCK);
	return hash.digest("hex");
};

/** Reads from the socket until `done` finds what it needs in everything read so far. */
function readUntil<T>(socket: Socket, done: (data: Buffer) => T | undefined): Promise<T> {
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

async function publishTo(edge: WorkerdInstance, cp: ControlPlane) {
	return publishRouteSnapshot(cp.store, await edge.mf.getKVNamespace("ROUTES"));
}

let bundle: WorkerBundle;

// One wrangler bundle for the whole file: it takes seconds, each workerd instance well under one.
beforeAll(async () => {
	bundle = await bundleWorker("edge");
}, 120_000);
afterAll(async () => {
	await bundle?.remove();
});

describe("edge worker in workerd: routing and proxying", () => {
	let t: TestPlatform;
	let cp: ControlPlane;
	let eu: TestOrigin;
	let us: TestOrigin;
	let usFailover: TestOrigin;
	let silent: Awaited<ReturnType<typeof startSilentOrigin>>;
	let edge: WorkerdInstance;
	const host: Record<string, string> = {};

	beforeAll(async () => {
		t = await createTestPlatform();
		cp = new ControlPlane(t);
		[eu, us, usFailover, silent] = await Promise.all([
			startTestOrigin("eu-central"),
			startTestOrigin("us-east"),
			startTestOrigin("us-east-failover"),
			startSilentOrigin(),
		]);
		await cp.node({ regionId: "eu-central", name: "eu-1", instanceUrls: [eu.url] });
		await cp.node({ regionId: "us-east", name: "us-1", instanceUrls: [us.url] });
		host.eu = await cp.tenant({ id: "ten_eu_shop", slug: "eu-shop", homeRegion: "eu-central" });
		host.us = await cp.tenant({ id: "ten_us_shop", slug: "us-shop", homeRegion: "us-east" });
		host.gone = await cp.tenant({ id: "ten_gone", slug: "gone-shop", homeRegion: "eu-central" });
		host.paused = await cp.tenant({ id: "ten_paused", slug: "paused", homeRegion: "eu-central" });
		// Own nodes, so its tiers are exactly [dead EU instance], [live US instance].
		host.failover = await cp.tenant({
			id: "ten_failover",
			slug: "failover-shop",
			homeRegion: "eu-central",
			allowedRegions: ["eu-central", "us-east"],
		});
		await cp.node({
			regionId: "eu-central",
			name: "failover-eu",
			instanceUrls: [await closedPortUrl()],
			dedicatedTenantId: "ten_failover",
		});
		await cp.node({
			regionId: "us-east",
			name: "failover-us",
			instanceUrls: [usFailover.url],
			dedicatedTenantId: "ten_failover",
		});
		host.slow = await cp.tenant({ id: "ten_slow", slug: "slow-shop", homeRegion: "eu-central" });
		await cp.node({
			regionId: "eu-central",
			name: "slow-eu",
			instanceUrls: [silent.url],
			dedicatedTenantId: "ten_slow",
		});
		await cp.provision();
		await cp.delete("ten_gone");
		await cp.suspend("ten_paused");

		edge = await runInWorkerd(bundle, {
			kvNamespaces: ["ROUTES"],
			bindings: { UPSTREAM_TIMEOUT_SECONDS: "1" },
		});
		const published = await publishTo(edge, cp);
		expect(published).toMatchObject({ published: true, hosts: 6 });
	}, 60_000);
	afterAll(async () => {
		await edge?.dispose();
		await Promise.all([eu?.close(), us?.close(), usFailover?.close(), silent?.close()]);
		t?.close();
	});

	it("routes each tenant to an instance of its own region", async () => {
		const fromEu = await call(edge.url, { host: host.eu!, path: "/hello?x=1" });
		const fromUs = await call(edge.url, { host: host.us!, path: "/orders" });
		expect(fromEu.status).toBe(200);
		expect(fromUs.status).toBe(200);
		const euEcho = JSON.parse(fromEu.text) as Echo;
		const usEcho = JSON.parse(fromUs.text) as Echo;
		expect(euEcho).toMatchObject({ origin: "eu-central", method: "GET", url: "/hello?x=1" });
		expect(usEcho).toMatchObject({ origin: "us-east", method: "GET", url: "/orders" });
		// Each origin saw only its own tenant.
		expect(eu.seen.map((s) => s.headers["x-forwarded-host"])).not.toContain(host.us);
		expect(us.seen.map((s) => s.headers["x-forwarded-host"])).not.toContain(host.eu);
		// The id the origin received is the one the client gets back.
		expect(fromEu.headers["x-request-id"]).toBe(euEcho.headers["x-request-id"]);
	});

	it.each([
		["unknown.localhost", 404, "unknown_host"],
		["gone-shop.localhost", 410, "tenant_deleted"],
		["paused.localhost", 403, "tenant_suspended"],
	])(
		"answers %s with %i %s in the shared error shape, reaching no origin",
		async (name, status, code) => {
			const seenBefore = eu.seen.length + us.seen.length;
			const res = await call(edge.url, { host: name, path: "/" });
			expect(res.status).toBe(status);
			const error = errorOf(res);
			expect(error.code).toBe(code);
			expect(res.headers["content-type"]).toBe("application/json");
			expect(res.headers["cache-control"]).toBe("no-store");
			expect(res.headers["x-request-id"]).toBe(error.requestId);
			expect(res.headers["retry-after"]).toBeUndefined();
			expect(eu.seen.length + us.seen.length).toBe(seenBefore);
		},
	);

	it.each([
		["GET", {}],
		["DELETE", {}],
		["PUT", { "content-length": "0" }],
	])(
		"retries a bodiless %s once on the alternative after a refused connection",
		async (method, headers) => {
			const before = usFailover.seen.length;
			const res = await call(edge.url, {
				host: host.failover!,
				method,
				path: "/retry-me",
				headers,
			});
			expect(res.status).toBe(200);
			expect(JSON.parse(res.text)).toMatchObject({
				origin: "us-east-failover",
				method,
				url: "/retry-me",
			});
			expect(usFailover.seen.length).toBe(before + 1);
			// The first attempt went to the dead EU instance, the only one of the first tier.
			const requestId = res.headers["x-request-id"];
			const unreachable = edge.logs.filter(
				(l) => l.includes("edge: instance unreachable") && l.includes(String(requestId)),
			);
			expect(unreachable).toHaveLength(1);
			expect(unreachable[0]).toContain('"regionId":"eu-central"');
		},
	);

	it.each([
		["a POST with a body", "POST", '{"qty":1}'],
		// Not idempotent: even with nothing to resend, it may have been processed once.
		["a bodiless POST", "POST", ""],
		// Idempotent, but its body was a stream that the failed attempt consumed.
		["a PUT with a body", "PUT", '{"qty":1}'],
	])(
		"does not retry %s: 502 bad_gateway, the alternative receives nothing",
		async (_, method, body) => {
			const before = usFailover.seen.length;
			const res = await call(edge.url, {
				host: host.failover!,
				method,
				path: "/orders",
				headers: { "content-length": String(Buffer.byteLength(body)) },
				body,
			});
			expect(res.status).toBe(502);
			expect(errorOf(res)).toMatchObject({
				code: "bad_gateway",
				message: "the instance could not be reached",
			});
			expect(usFailover.seen.length).toBe(before);
		},
	);

	it("answers 504 gateway_timeout when the instance accepts but never answers", async () => {
		const started = performance.now();
		const res = await call(edge.url, { host: host.slow!, path: "/slow" });
		expect(res.status).toBe(504);
		expect(errorOf(res)).toMatchObject({
			code: "gateway_timeout",
			message: "the instance did not answer in time",
		});
		expect(silent.accepted()).toBeGreaterThanOrEqual(1);
		// UPSTREAM_TIMEOUT_SECONDS is 1: it applied, and nothing waited for the 30 s default.
		expect(performance.now() - started).toBeGreaterThanOrEqual(900);
		expect(performance.now() - started).toBeLessThan(10_000);
	});

	it("streams a POST body: the origin reads the first block before the client sends the rest", async () => {
		const blocks = 64; // 4 MiB
		eu.uploadFirstByteAt = undefined;
		const body = new PassThrough();
		const answer = call(edge.url, { host: host.eu!, method: "POST", path: "/upload", body });
		body.write(BLOCK);
		// A proxy that buffered the body would hold this block until the client ended it.
		await vi.waitFor(() => expect(eu.uploadFirstByteAt).toBeDefined(), { timeout: 10_000 });
		for (let i = 1; i < blocks; i++) body.write(BLOCK);
		body.end();
		const res = await answer;
		expect(res.status).toBe(200);
		expect(JSON.parse(res.text)).toEqual({ bytes: blocks * BLOCK.length, sha256: sha256(blocks) });
		// No Content-Length from the client: it arrives chunked, as sent.
		expect(eu.seen.at(-1)?.headers["transfer-encoding"]).toBe("chunked");
	});

	it("keeps the client's Content-Length on a fixed-size body", async () => {
		const payload = Buffer.concat([BLOCK, BLOCK, BLOCK]);
		const res = await call(edge.url, {
			host: host.eu!,
			method: "PUT",
			path: "/upload",
			headers: { "content-length": String(payload.length) },
			body: payload,
		});
		expect(res.status).toBe(200);
		expect(JSON.parse(res.text)).toEqual({ bytes: payload.length, sha256: sha256(3) });
		expect(eu.seen.at(-1)?.headers["content-length"]).toBe(String(payload.length));
	});

	it("streams a 16 MiB response: the client has bytes before the origin has finished sending", async () => {
		const blocks = 256;
		eu.downloadFinishedAt = undefined;
		const result = await new Promise<{ firstByteAt: number; bytes: number; sha256: string }>(
			(resolve, reject) => {
				const req = request(
					{
						host: edge.url.hostname,
						port: edge.url.port,
						path: `/download?blocks=${blocks}`,
						headers: { host: host.eu },
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
		expect(result.bytes).toBe(blocks * BLOCK.length);
		expect(result.sha256).toBe(sha256(blocks));
		expect(eu.downloadFinishedAt).toBeDefined();
		expect(result.firstByteAt).toBeLessThan(eu.downloadFinishedAt!);
	});

	it("strips hop-by-hop headers both ways and sets X-Forwarded-* and Forwarded itself", async () => {
		const res = await call(edge.url, {
			host: host.eu!,
			path: "/hop",
			headers: {
				connection: "keep-alive, x-named-hop",
				"x-named-hop": "must not pass",
				"keep-alive": "timeout=5",
				"proxy-authorization": "Basic c2VjcmV0",
				te: "trailers",
				// Forged forwarding headers are replaced, never appended to.
				"x-forwarded-for": "6.6.6.6",
				"x-forwarded-host": "evil.example",
				"x-forwarded-proto": "gopher",
				forwarded: "for=6.6.6.6",
				"cf-connecting-ip": "203.0.113.7",
				"x-request-id": "client-request-0001",
				"x-app-header": "kept",
			},
		});
		expect(res.status).toBe(200);
		const seen = (JSON.parse(res.text) as Echo).headers;
		for (const name of ["x-named-hop", "keep-alive", "proxy-authorization", "te"]) {
			expect(seen[name], name).toBeUndefined();
		}
		expect(seen["x-app-header"]).toBe("kept");
		expect(seen["x-forwarded-for"]).toBe("203.0.113.7");
		expect(seen["x-forwarded-host"]).toBe(host.eu);
		// Plain HTTP to workerd here; behind Cloudflare the request URL, hence the proto, is https.
		expect(seen["x-forwarded-proto"]).toBe("http");
		expect(seen["forwarded"]).toBe(`for=203.0.113.7;host="${host.eu}";proto=http`);
		expect(seen["x-request-id"]).toBe("client-request-0001");
		// The origin's hop-by-hop headers (and the one its Connection names) stop at the edge.
		expect(res.headers["x-origin-hop"]).toBeUndefined();
		expect(res.headers["keep-alive"]).toBeUndefined();
		expect(res.headers["x-origin-kept"]).toBe("yes");
		expect(res.headers["x-request-id"]).toBe("client-request-0001");
	});

	it("passes a WebSocket upgrade through and echoes frames both ways", async () => {
		const socket = await new Promise<Socket>((resolve, reject) => {
			const s = connect({ host: edge.url.hostname, port: Number(edge.url.port) }, () => resolve(s));
			s.once("error", reject);
		});
		try {
			const key = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64");
			socket.write(
				`GET /chat?room=1 HTTP/1.1\r\nHost: ${host.eu}\r\nUpgrade: websocket\r\n` +
					`Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
			);
			const head = await readUntil(socket, (data) => {
				const end = data.indexOf("\r\n\r\n");
				return end < 0 ? undefined : data.subarray(0, end).toString();
			});
			expect(head).toMatch(/^HTTP\/1\.1 101 /);
			expect(head.toLowerCase()).toContain(
				`sec-websocket-accept: ${websocketAccept(key).toLowerCase()}`,
			);
			socket.write(encodeTextFrame("hello", true));
			const frame = await readUntil(socket, (data) => {
				const start = data.indexOf("\r\n\r\n");
				return decodeFrame(start < 0 ? data : data.subarray(start + 4));
			});
			expect(frame.text).toBe("eu-central:hello");
			const upgrade = eu.seen.findLast((s) => s.url === "/chat?room=1");
			expect(upgrade?.headers["x-forwarded-host"]).toBe(host.eu);
		} finally {
			socket.destroy();
		}
	});
});

describe("edge worker in workerd: residency when every EU instance is down", () => {
	let t: TestPlatform;
	let cp: ControlPlane;
	let eu: TestOrigin;
	let us: TestOrigin;
	let edge: WorkerdInstance;
	let euHost: string;
	let usHost: string;

	beforeAll(async () => {
		t = await createTestPlatform();
		cp = new ControlPlane(t);
		[eu, us] = await Promise.all([startTestOrigin("eu-central"), startTestOrigin("us-east")]);
		// The EU node's health endpoint is dead, so one probe (fall: 1) marks it unhealthy.
		await cp.node({
			regionId: "eu-central",
			name: "eu-down",
			instanceUrls: [eu.url],
			healthUrl: `${await closedPortUrl()}/healthz`,
		});
		await cp.node({ regionId: "us-east", name: "us-up", instanceUrls: [us.url] });
		euHost = await cp.tenant({
			id: "ten_sovereign",
			slug: "sovereign-shop",
			homeRegion: "eu-central",
			profile: "sovereign",
		});
		usHost = await cp.tenant({ id: "ten_us", slug: "us-shop", homeRegion: "us-east" });
		await cp.provision();
		const probed = await cp.probe();
		expect(probed).toEqual([{ name: "eu-down", to: "unhealthy" }]);
		edge = await runInWorkerd(bundle, {
			kvNamespaces: ["ROUTES"],
			bindings: { RETRY_AFTER_SECONDS: "7" },
		});
		await publishTo(edge, cp);
	}, 60_000);
	afterAll(async () => {
		await edge?.dispose();
		await Promise.all([eu?.close(), us?.close()]);
		t?.close();
	});

	it("answers 503 with Retry-After for the EU tenant and sends nothing to the healthy US instance", async () => {
		const res = await call(edge.url, { host: euHost, path: "/" });
		expect(res.status).toBe(503);
		expect(errorOf(res).code).toBe("no_healthy_instance");
		expect(res.headers["retry-after"]).toBe("7");
		expect(us.seen).toEqual([]);
		expect(eu.seen).toEqual([]);
	});

	it("still serves the US tenant from the US instance (it is healthy and routable)", async () => {
		const res = await call(edge.url, { host: usHost, path: "/" });
		expect(res.status).toBe(200);
		expect(JSON.parse(res.text)).toMatchObject({ origin: "us-east" });
		expect(us.seen.map((s) => s.headers["x-forwarded-host"])).toEqual([usHost]);
	});
});

describe("edge worker in workerd: the per-isolate route cache", () => {
	let t: TestPlatform;
	let cp: ControlPlane;
	let eu: TestOrigin;
	const running: WorkerdInstance[] = [];
	let slugs = 0;

	beforeAll(async () => {
		t = await createTestPlatform();
		cp = new ControlPlane(t);
		eu = await startTestOrigin("eu-central");
		await cp.node({ regionId: "eu-central", name: "eu-1", instanceUrls: [eu.url] });
	});
	afterAll(async () => {
		await Promise.all(running.map((r) => r.dispose()));
		await eu?.close();
		t?.close();
	});

	async function start(bindings: Record<string, string>) {
		const edge = await runInWorkerd(bundle, { kvNamespaces: ["ROUTES"], bindings });
		running.push(edge);
		return edge;
	}

	/** A provisioned tenant of its own; returns its hostname. */
	async function newTenant(): Promise<string> {
		slugs += 1;
		const name = await cp.tenant({
			id: `ten_cache_${slugs}`,
			slug: `cache-${slugs}`,
			homeRegion: "eu-central",
		});
		await cp.provision();
		return name;
	}

	it("answers 503 until a snapshot is published, then loads it on the next request", async () => {
		// A long interval: only the "no table yet" path can explain the pickup below.
		const edge = await start({ ROUTE_REFRESH_SECONDS: "600", RETRY_AFTER_SECONDS: "3" });
		const name = await newTenant();
		const before = await call(edge.url, { host: name });
		expect(before.status).toBe(503);
		expect(errorOf(before)).toMatchObject({
			code: "internal_error",
			message: "the edge has no routes yet",
		});
		expect(before.headers["retry-after"]).toBe("3");
		await publishTo(edge, cp);
		expect((await call(edge.url, { host: name })).status).toBe(200);
	});

	it("keeps its table for ROUTE_REFRESH_SECONDS, then picks up the new version", async () => {
		const edge = await start({ ROUTE_REFRESH_SECONDS: "2" });
		const name = await newTenant();
		await publishTo(edge, cp);
		const loadedBy = performance.now();
		expect((await call(edge.url, { host: name })).status).toBe(200);

		await cp.suspend(`ten_cache_${slugs}`);
		expect((await publishTo(edge, cp)).published).toBe(true);
		// KV already holds the new version; the isolate does not look before its interval.
		expect((await call(edge.url, { host: name })).status).toBe(200);

		await vi.waitFor(async () => expect((await call(edge.url, { host: name })).status).toBe(403), {
			timeout: 10_000,
			interval: 100,
		});
		// The first table was loaded after loadedBy: the next cannot come less than 2 s later.
		expect(performance.now() - loadedBy).toBeGreaterThanOrEqual(2000);
		expect(edge.logs.filter((l) => l.includes("edge: routes loaded"))).toHaveLength(2);
	});

	it("answers 500 naming the var when a setting is malformed", async () => {
		const edge = await start({ ROUTE_REFRESH_SECONDS: "soon" });
		const res = await call(edge.url, { host: "any.localhost" });
		expect(res.status).toBe(500);
		expect(errorOf(res)).toMatchObject({
			code: "internal_error",
			message:
				'edge misconfigured: ROUTE_REFRESH_SECONDS must be a number of seconds >= 0, got "soon"',
		});
	});
});
