import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type NodeEdge, startNodeEdge } from "../../edge/node/start-node-edge";
import { type DemoOrigin, startDemoOrigin } from "../../scripts/demo-origin";
import { httpCall, httpsCall } from "./helpers/edge-clients";
import { createEdgeFixture, type EdgeFixture } from "./helpers/edge-fixture";
import { seedInstance, seedRoute, seedTenant, uniqueId } from "./helpers/seed";

describe("demo origins behind the edge (the embedded default's data planes)", () => {
	let fx: EdgeFixture;
	let euOrigin: DemoOrigin;
	let usOrigin: DemoOrigin;
	let edge: NodeEdge;

	beforeAll(async () => {
		fx = await createEdgeFixture();
		[euOrigin, usOrigin] = await Promise.all([
			startDemoOrigin({ regionId: "eu-central", port: 0 }),
			startDemoOrigin({ regionId: "us-east", port: 0 }),
		]);
		await seedInstance(fx.eu, { url: `http://127.0.0.1:${euOrigin.port}` });
		await seedInstance(fx.us, { url: `http://127.0.0.1:${usOrigin.port}` });
		edge = await startNodeEdge({
			store: fx.temp.store,
			secrets: fx.secrets,
			httpsPort: 0,
			httpPort: 0,
			host: "127.0.0.1",
		});
	});
	afterAll(async () => {
		await edge?.close();
		await Promise.all([euOrigin?.close(), usOrigin?.close()]);
		fx?.close();
	});

	it("answers with its region on any path, and 200 on /healthz", async () => {
		const res = await httpCall(euOrigin.port, {
			host: "anything.localhost",
			path: "/some/path?x=1",
		});
		expect(JSON.parse(res.text)).toMatchObject({
			region: "eu-central",
			path: "/some/path?x=1",
			host: "anything.localhost",
		});
		const health = await httpCall(usOrigin.port, { host: "x", path: "/healthz" });
		expect(health.status).toBe(200);
		expect(JSON.parse(health.text)).toMatchObject({ ok: true, region: "us-east" });
	});

	it("serves each tenant from its home region's origin", async () => {
		for (const [region, regionId] of [
			[fx.eu, "eu-central"],
			[fx.us, "us-east"],
		] as const) {
			const tenantId = await seedTenant(region);
			const name = `${uniqueId("demo").replace(/_/g, "-")}.localhost`;
			await seedRoute(region, fx, { hostname: name, tenantId });
			await edge.reload();
			const res = await httpsCall(edge.httpsPort, { servername: name, ca: fx.caPem, path: "/" });
			expect(JSON.parse(res.text)).toMatchObject({ region: regionId, path: "/", host: name });
		}
	});
});
