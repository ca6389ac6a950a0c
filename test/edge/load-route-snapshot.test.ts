import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { instances, nodes, routes } from "../../db/schema/region";
import {
	loadRouteSnapshot,
	RouteSnapshotLoader,
	readCombinedRouteVersion,
} from "../../edge/load-route-snapshot";
import { createTempStore, type TempStore } from "../helpers/temp-store";
import { bump, seedInstance, seedTenant } from "./helpers/seed";

describe("loadRouteSnapshot", () => {
	let temp: TempStore;
	beforeEach(async () => {
		temp = await createTempStore();
	});
	afterEach(() => temp.close());

	const addRoute = (regionId: string, hostname: string, tenantId: string, certificateId?: string) =>
		temp.store
			.region(regionId)
			.db.insert(routes)
			.values({ hostname, tenantId, certificateId: certificateId ?? null, updatedAt: new Date() });

	it("reads every region's routes, tenants and instances into one snapshot", async () => {
		const eu = temp.store.region("eu-central");
		const us = temp.store.region("us-east");
		const euTenant = await seedTenant(eu, { allowedRegions: ["eu-central", "us-east"] });
		const usTenant = await seedTenant(us, { status: "suspended" });
		await addRoute("eu-central", "acme.example.net", euTenant, "crt_1");
		await addRoute("us-east", "globex.example.net", usTenant);
		const euInstance = await seedInstance(eu, { url: "http://127.0.0.1:9001", state: "healthy" });
		const usInstance = await seedInstance(us, { url: "http://127.0.0.1:9002", state: "unhealthy" });
		const fresh = await seedInstance(us, {
			url: "http://127.0.0.1:9003",
			state: "unknown",
			dedicatedTenantId: usTenant,
		});

		const snapshot = await loadRouteSnapshot(temp.store);
		expect(snapshot.hosts).toEqual(
			expect.arrayContaining([
				{
					hostname: "acme.example.net",
					tenantId: euTenant,
					status: "active",
					allowedRegions: ["eu-central", "us-east"],
					allowedJurisdictions: ["EU", "US"],
					certificateId: "crt_1",
				},
				{
					hostname: "globex.example.net",
					tenantId: usTenant,
					status: "suspended",
					allowedRegions: ["us-east"],
					allowedJurisdictions: ["US"],
					certificateId: undefined,
				},
			]),
		);
		expect(snapshot.instances).toEqual(
			expect.arrayContaining([
				expect.objectContaining({
					id: euInstance,
					regionId: "eu-central",
					jurisdiction: "EU",
					healthy: true,
				}),
				expect.objectContaining({
					id: usInstance,
					regionId: "us-east",
					jurisdiction: "US",
					healthy: false,
				}),
				// Not probed yet: routable, so a fresh install answers before the first health probe.
				expect.objectContaining({ id: fresh, healthy: true, dedicatedTenantId: usTenant }),
			]),
		);
		expect(snapshot.instances).toHaveLength(3);
		// JSON-clean: what the Workers edge will read back from KV is the same object.
		expect(JSON.parse(JSON.stringify(snapshot))).toEqual(snapshot);
	});

	it("keeps a sovereign tenant in its home jurisdiction whatever its region list says", async () => {
		const eu = temp.store.region("eu-central");
		const tenant = await seedTenant(eu, {
			profile: "sovereign",
			allowedRegions: ["eu-central", "us-east"],
		});
		await addRoute("eu-central", "sov.example.net", tenant);
		const [host] = (await loadRouteSnapshot(temp.store)).hosts;
		expect(host).toMatchObject({ allowedJurisdictions: ["EU"] });
	});

	it("skips routes whose tenant is not in the same region and nodes claiming another region", async () => {
		const eu = temp.store.region("eu-central");
		await addRoute("eu-central", "orphan.example.net", "ten_missing");
		await eu.db.insert(nodes).values({
			id: "n-us",
			regionId: "us-east",
			name: "n-us",
			address: "10.0.0.1",
			state: "healthy",
			updatedAt: new Date(),
		});
		await eu.db
			.insert(instances)
			.values({ id: "i-us", nodeId: "n-us", url: "http://10.0.0.1", createdAt: new Date() });
		const snapshot = await loadRouteSnapshot(temp.store);
		expect(snapshot.hosts).toEqual([]);
		expect(snapshot.instances).toEqual([]);
	});

	it("names every region's route version and changes when one is bumped", async () => {
		expect(await readCombinedRouteVersion(temp.store)).toBe("eu-central:0,us-east:0");
		await bump(temp.store.region("us-east"));
		expect(await readCombinedRouteVersion(temp.store)).toBe("eu-central:0,us-east:1");
		expect((await loadRouteSnapshot(temp.store)).version).toBe("eu-central:0,us-east:1");
	});

	it("re-reads only regions whose version moved; `fresh` re-reads all", async () => {
		const eu = temp.store.region("eu-central");
		const us = temp.store.region("us-east");
		const loader = new RouteSnapshotLoader(temp.store);
		const euTenant = await seedTenant(eu);
		const usTenant = await seedTenant(us);
		await addRoute("eu-central", "first.example.net", euTenant);
		expect((await loader.load()).hosts.map((h) => h.hostname)).toEqual(["first.example.net"]);

		// An eu-central write without its bump stays unseen while only us-east's version moves...
		await addRoute("eu-central", "unbumped.example.net", euTenant);
		await addRoute("us-east", "us.example.net", usTenant);
		await bump(us);
		const partial = await loader.load();
		expect(partial.hosts.map((h) => h.hostname).sort()).toEqual([
			"first.example.net",
			"us.example.net",
		]);
		// ...and appears once eu-central's version moves, or on a fresh load.
		expect((await loader.load({ fresh: true })).hosts).toHaveLength(3);
		await bump(eu);
		expect((await loader.load()).hosts).toHaveLength(3);
	});
});
