import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type NodeEdge, startNodeEdge } from "../../edge/node/start-node-edge";
import { httpsCall } from "./helpers/edge-clients";
import { createEdgeFixture, type EdgeFixture } from "./helpers/edge-fixture";
import { bump, seedInstance, seedRoute, seedTenant, uniqueId } from "./helpers/seed";
import {
	closedPortUrl,
	startResettingOrigin,
	startSilentOrigin,
	startTestOrigin,
	type TestOrigin,
} from "./helpers/test-origins";

const hostname = (label: string) => `${uniqueId(label).replace(/_/g, "-")}.example.net`;

describe("Node edge: proxying", () => {
	let fx: EdgeFixture;
	let eu: TestOrigin;
	let us: TestOrigin;
	let silent: Awaited<ReturnType<typeof startSilentOrigin>>;
	let resetting: Awaited<ReturnType<typeof startResettingOrigin>>;
	let edge: NodeEdge;
	const suspects: string[] = [];

	beforeAll(async () => {
		fx = await createEdgeFixture();
		[eu, us, silent, resetting] = await Promise.all([
			startTestOrigin("eu-1"),
			startTestOrigin("us-1"),
			startSilentOrigin(),
			startResettingOrigin(),
		]);
		edge = await startNodeEdge({
			store: fx.temp.store,
			secrets: fx.secrets,
			httpsPort: 0,
			httpPort: 0,
			host: "127.0.0.1",
			reloadIntervalMs: 250,
			// Always the first instance of the preferred region: makes "which one failed" deterministic.
			random: () => 0,
			timeouts: { responseMs: 400, connectMs: 1_000 },
			onInstanceSuspect: (id) => suspects.push(id),
		});
	});
	afterAll(async () => {
		await edge?.close();
		await Promise.all([eu?.close(), us?.close(), silent?.close(), resetting?.close()]);
		fx?.close();
	});

	/** A tenant homed in `region` with its own instances and a routed hostname with a certificate. */
	async function tenantWith(
		instances: Array<{ url: string; region?: "eu" | "us"; state?: "healthy" | "unhealthy" }>,
		tenant: { allowedRegions?: string[]; status?: "active" | "suspended" | "deleted" } = {},
	) {
		const tenantId = await seedTenant(fx.eu, tenant);
		const name = hostname("t");
		const instanceIds: string[] = [];
		// One prefix, then the position: ids sort in the order given, which is the table's order.
		const prefix = uniqueId("ins");
		for (const [i, spec] of instances.entries()) {
			const region = spec.region === "us" ? fx.us : fx.eu;
			// Dedicated to this tenant, so each test sees only its own instances.
			instanceIds.push(
				await seedInstance(region, {
					id: `${prefix}_${i}`,
					url: spec.url,
					state: spec.state ?? "healthy",
					dedicatedTenantId: tenantId,
				}),
			);
		}
		await seedRoute(fx.eu, fx, { hostname: name, tenantId });
		await edge.reload();
		return { name, tenantId, instanceIds };
	}

	it("forwards method, path and body, sets forwarding headers and strips hop-by-hop ones", async () => {
		const { name } = await tenantWith([{ url: eu.url }]);
		const res = await httpsCall(edge.httpsPort, {
			servername: name,
			host: `${name}:${edge.httpsPort}`,
			ca: fx.caPem,
			method: "PATCH",
			path: "/hop?x=1",
			headers: {
				connection: "keep-alive, X-Client-Hop",
				"x-client-hop": "secret",
				"keep-alive": "timeout=5",
				"proxy-authorization": "Basic c2VjcmV0",
				te: "trailers",
				upgrade: "h2c",
				"x-forwarded-for": "203.0.113.66",
				"x-forwarded-host": "evil.example",
				forwarded: "for=203.0.113.66",
				"x-request-id": "client-supplied-id-1234",
				"x-kept": "yes",
			},
			body: "hello",
		});
		expect(res.status).toBe(200);
		const seen = JSON.parse(res.text) as {
			method: string;
			url: string;
			headers: Record<string, string>;
		};
		expect(seen.method).toBe("PATCH");
		expect(seen.url).toBe("/hop?x=1");
		for (const header of ["x-client-hop", "keep-alive", "proxy-authorization", "te", "upgrade"]) {
			expect(seen.headers[header], header).toBeUndefined();
		}
		expect(seen.headers).toMatchObject({
			host: `${name}:${edge.httpsPort}`,
			"x-forwarded-for": "127.0.0.1",
			"x-forwarded-proto": "https",
			"x-forwarded-host": `${name}:${edge.httpsPort}`,
			forwarded: `for=127.0.0.1;host="${name}:${edge.httpsPort}";proto=https`,
			"x-request-id": "client-supplied-id-1234",
			"x-kept": "yes",
			"content-length": "5",
		});
		// The origin's own hop-by-hop headers do not reach the client either.
		expect(res.headers["x-origin-hop"]).toBeUndefined();
		// The edge's own connection may say Keep-Alive; the origin's value (max=77) must not pass.
		expect(res.headers["keep-alive"] ?? "").not.toContain("max=77");
		expect(res.headers["x-origin-kept"]).toBe("yes");
		expect(res.headers["x-request-id"]).toBe("client-supplied-id-1234");
	});

	it("adds a request id when the client sends none (or a malformed one)", async () => {
		const { name } = await tenantWith([{ url: eu.url }]);
		const res = await httpsCall(edge.httpsPort, {
			servername: name,
			ca: fx.caPem,
			headers: { "x-request-id": "bad id" },
		});
		const seen = JSON.parse(res.text) as { headers: Record<string, string> };
		expect(seen.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
		expect(res.headers["x-request-id"]).toBe(seen.headers["x-request-id"]);
	});

	it("keeps an EU tenant in the EU: every EU instance down means 503, and the US origin sees nothing", async () => {
		const before = us.seen.length;
		const { name } = await tenantWith(
			[
				{ url: eu.url, state: "unhealthy" },
				{ url: us.url, region: "us" },
			],
			{ allowedRegions: ["eu-central"] },
		);
		const res = await httpsCall(edge.httpsPort, { servername: name, ca: fx.caPem });
		expect(res.status).toBe(503);
		expect(res.headers["retry-after"]).toBe("5");
		expect(JSON.parse(res.text)).toEqual({
			error: {
				code: "no_healthy_instance",
				message: "no healthy instance is available",
				requestId: res.headers["x-request-id"],
			},
		});
		expect(us.seen.length).toBe(before);
	});

	it("retries an idempotent request on another instance when the connection is refused", async () => {
		const dead = await closedPortUrl();
		const { name, instanceIds } = await tenantWith([{ url: dead }, { url: eu.url }]);
		const res = await httpsCall(edge.httpsPort, {
			servername: name,
			ca: fx.caPem,
			path: "/retry-me",
		});
		expect(res.status).toBe(200);
		expect(JSON.parse(res.text)).toMatchObject({ origin: "eu-1", url: "/retry-me" });
		expect(suspects).toContain(instanceIds[0]);
		expect(suspects).not.toContain(instanceIds[1]);
	});

	it("retries an idempotent request when the instance resets the connection before answering", async () => {
		const { name, instanceIds } = await tenantWith([{ url: resetting.url }, { url: eu.url }]);
		const res = await httpsCall(edge.httpsPort, {
			servername: name,
			ca: fx.caPem,
			method: "DELETE",
			path: "/reset",
		});
		expect(res.status).toBe(200);
		expect(JSON.parse(res.text)).toMatchObject({ origin: "eu-1", method: "DELETE", url: "/reset" });
		expect(suspects).toContain(instanceIds[0]);
	});

	it("answers 502 without a retry when the only eligible instance is down", async () => {
		const dead = await closedPortUrl();
		const { name, instanceIds } = await tenantWith([{ url: dead }]);
		const res = await httpsCall(edge.httpsPort, { servername: name, ca: fx.caPem });
		expect(res.status).toBe(502);
		expect(JSON.parse(res.text)).toMatchObject({
			error: { code: "bad_gateway", requestId: res.headers["x-request-id"] },
		});
		expect(suspects.filter((id) => id === instanceIds[0])).toHaveLength(1);
	});

	it("does not retry a POST with a body: 502, and the other instance never sees it", async () => {
		const dead = await closedPortUrl();
		const { name, instanceIds } = await tenantWith([{ url: dead }, { url: eu.url }]);
		const before = eu.seen.filter((r) => r.url === "/no-retry").length;
		const res = await httpsCall(edge.httpsPort, {
			servername: name,
			ca: fx.caPem,
			method: "POST",
			path: "/no-retry",
			body: "payload",
		});
		expect(res.status).toBe(502);
		expect(JSON.parse(res.text)).toMatchObject({ error: { code: "bad_gateway" } });
		expect(eu.seen.filter((r) => r.url === "/no-retry").length).toBe(before);
		expect(suspects).toContain(instanceIds[0]);
	});

	it("answers 504 within the response timeout when the origin accepts but never answers", async () => {
		const { name } = await tenantWith([{ url: silent.url }, { url: eu.url }]);
		const started = performance.now();
		const res = await httpsCall(edge.httpsPort, { servername: name, ca: fx.caPem });
		const elapsed = performance.now() - started;
		expect(res.status).toBe(504);
		expect(JSON.parse(res.text)).toMatchObject({ error: { code: "gateway_timeout" } });
		expect(elapsed).toBeGreaterThanOrEqual(390);
		expect(elapsed).toBeLessThan(2_000);
		expect(silent.accepted()).toBeGreaterThan(0);
	});

	it.each([
		["suspended", 403, "tenant_suspended"],
		["deleted", 410, "tenant_deleted"],
	] as const)(
		"answers a %s tenant with %i, without contacting an instance",
		async (status, code, errorCode) => {
			const before = eu.seen.length;
			const { name } = await tenantWith([{ url: eu.url }], { status });
			const res = await httpsCall(edge.httpsPort, { servername: name, ca: fx.caPem });
			expect(res.status).toBe(code);
			expect(JSON.parse(res.text)).toMatchObject({ error: { code: errorCode } });
			expect(eu.seen.length).toBe(before);
		},
	);

	it("sees a new route within 1 s of the route version bump, without an explicit reload", async () => {
		const tenantId = await seedTenant(fx.eu);
		await seedInstance(fx.eu, { url: eu.url, dedicatedTenantId: tenantId });
		const name = hostname("new");
		await seedRoute(fx.eu, fx, { hostname: name, tenantId });
		// Not visible before the bump: the edge reloads on the version, not on a timer.
		expect(edge.table().lookup(name)).toBeUndefined();
		await bump(fx.eu);
		const bumped = performance.now();
		let status = 0;
		while (status !== 200 && performance.now() - bumped < 2_000) {
			status = await httpsCall(edge.httpsPort, { servername: name, ca: fx.caPem })
				.then((r) => r.status)
				.catch(() => 0);
		}
		expect(status).toBe(200);
		expect(performance.now() - bumped).toBeLessThan(1_000);
	});
});
