import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { certificates, routes } from "../../db/schema/region";
import { type NodeEdge, startNodeEdge } from "../../edge/node/start-node-edge";
import { handshake, httpCall, httpsCall } from "./helpers/edge-clients";
import { createEdgeFixture, type EdgeFixture } from "./helpers/edge-fixture";
import {
	bump,
	seedCertificate,
	seedInstance,
	seedRoute,
	seedTenant,
	uniqueId,
} from "./helpers/seed";
import { startTestOrigin, type TestOrigin } from "./helpers/test-origins";

describe("Node edge: TLS by SNI and the HTTP listener", () => {
	let fx: EdgeFixture;
	let origin: TestOrigin;
	let edge: NodeEdge;
	let acme: string;
	let globex: string;
	let acmeTenant: string;

	beforeAll(async () => {
		fx = await createEdgeFixture();
		origin = await startTestOrigin("eu-1");
		await seedInstance(fx.eu, { url: origin.url });
		acmeTenant = await seedTenant(fx.eu);
		const globexTenant = await seedTenant(fx.eu);
		acme = `${uniqueId("acme").replace(/_/g, "-")}.example.net`;
		globex = `${uniqueId("globex").replace(/_/g, "-")}.example.net`;
		await seedRoute(fx.eu, fx, { hostname: acme, tenantId: acmeTenant });
		await seedRoute(fx.eu, fx, { hostname: globex, tenantId: globexTenant });
		edge = await startNodeEdge({
			store: fx.temp.store,
			secrets: fx.secrets,
			httpsPort: 0,
			httpPort: 0,
			host: "127.0.0.1",
			reloadIntervalMs: 50,
		});
	});
	afterAll(async () => {
		await edge?.close();
		await origin?.close();
		fx?.close();
	});

	it("presents each tenant's own certificate, chosen by SNI", async () => {
		for (const name of [acme, globex]) {
			const res = await httpsCall(edge.httpsPort, { servername: name, ca: fx.caPem });
			expect(res.status).toBe(200);
			expect(res.peer?.subject.CN).toBe(name);
			expect(res.peer?.subjectaltname).toBe(`DNS:${name}`);
			expect(JSON.parse(res.text)).toMatchObject({ origin: "eu-1" });
		}
	});

	it("fails the handshake for a name it does not serve, and without SNI, revealing no certificate", async () => {
		expect(await handshake(edge.httpsPort, acme)).toMatchObject({
			ok: true,
			peer: { subject: { CN: acme } },
		});
		for (const name of ["unknown.example.net", undefined]) {
			const result = await handshake(edge.httpsPort, name);
			expect(result.ok, String(name)).toBe(false);
			if (!result.ok) expect(result.error.message).toMatch(/alert|handshake|ECONNRESET|socket/i);
		}
	});

	it("answers 421 when the Host names another tenant than the SNI", async () => {
		const res = await httpsCall(edge.httpsPort, { servername: acme, host: globex, ca: fx.caPem });
		expect(res.status).toBe(421);
		expect(JSON.parse(res.text)).toMatchObject({ error: { code: "misdirected_request" } });
	});

	it("swaps to a renewed certificate without restart", async () => {
		const before = await httpsCall(edge.httpsPort, { servername: acme, ca: fx.caPem });
		const renewed = await seedCertificate(fx.eu, fx, { hostname: acme, tenantId: acmeTenant });
		await fx.eu.db
			.update(certificates)
			.set({ status: "superseded" })
			.where(eq(certificates.hostname, acme));
		await fx.eu.db
			.update(certificates)
			.set({ status: "active" })
			.where(eq(certificates.id, renewed.certificateId));
		await fx.eu.db
			.update(routes)
			.set({ certificateId: renewed.certificateId })
			.where(eq(routes.hostname, acme));
		await bump(fx.eu);
		const started = performance.now();
		let serial = before.peer?.serialNumber;
		while (serial !== renewed.serial.toUpperCase() && performance.now() - started < 2_000) {
			serial = (await httpsCall(edge.httpsPort, { servername: acme, ca: fx.caPem })).peer
				?.serialNumber;
		}
		expect(serial).toBe(renewed.serial.toUpperCase());
		expect(performance.now() - started).toBeLessThan(1_000);
		expect(before.peer?.serialNumber).not.toBe(serial);
	});

	it("never serves another tenant's certificate, even when a route names it", async () => {
		const thief = await seedTenant(fx.eu);
		const stolen = `${uniqueId("thief").replace(/_/g, "-")}.example.net`;
		const victimCert = await seedCertificate(fx.eu, fx, { hostname: stolen, tenantId: acmeTenant });
		await fx.eu.db.insert(routes).values({
			hostname: stolen,
			tenantId: thief,
			certificateId: victimCert.certificateId,
			updatedAt: new Date(),
		});
		await edge.reload();
		expect(edge.table().lookup(stolen)?.tenantId).toBe(thief);
		expect((await handshake(edge.httpsPort, stolen)).ok).toBe(false);
	});

	it("redirects plain HTTP to HTTPS on the same host and path, for served hosts only", async () => {
		const res = await httpCall(edge.httpPort, {
			host: `${acme}:${edge.httpPort}`,
			path: "/a/b?c=1",
		});
		expect(res.status).toBe(308);
		expect(res.headers.location).toBe(`https://${acme}:${edge.httpsPort}/a/b?c=1`);
		expect((await httpCall(edge.httpPort, { host: "evil.example.org" })).status).toBe(404);
		expect((await httpCall(edge.httpPort, { host: "bad host" })).status).toBe(400);
	});
});
