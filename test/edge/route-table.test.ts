import { describe, expect, it } from "vitest";
import { buildRouteTable } from "../../edge/core/route-table";
import { EU, EU_WEST, host, instance, snapshot, US } from "./helpers/snapshots";

const ids = (tiers: readonly (readonly { id: string }[])[]) => tiers.map((t) => t.map((i) => i.id));

describe("buildRouteTable", () => {
	it("groups a tenant's healthy instances by allowed region, in failover order", () => {
		const table = buildRouteTable(
			snapshot(
				[
					host("a.test", {
						allowedRegions: ["eu-west", "eu-central"],
						allowedJurisdictions: ["EU"],
					}),
				],
				[instance("c1", EU), instance("w1", EU_WEST), instance("c2", EU), instance("w2", EU_WEST)],
			),
		);
		expect(ids(table.lookup("a.test")!.tiers)).toEqual([
			["w1", "w2"],
			["c1", "c2"],
		]);
	});

	it("leaves out unhealthy instances and regions the tenant may not use", () => {
		const table = buildRouteTable(
			snapshot(
				[host("a.test")],
				[instance("eu-down", EU, { healthy: false }), instance("eu-up", EU), instance("us", US)],
			),
		);
		expect(ids(table.lookup("a.test")!.tiers)).toEqual([["eu-up"]]);
	});

	it("leaves out an instance whose jurisdiction is not allowed, even in an allowed region", () => {
		// A region list that names a US region must still not reach it without the US jurisdiction.
		const table = buildRouteTable(
			snapshot(
				[
					host("a.test", {
						allowedRegions: ["eu-central", "us-east"],
						allowedJurisdictions: ["EU"],
					}),
				],
				[instance("eu", EU), instance("us", US)],
			),
		);
		expect(ids(table.lookup("a.test")!.tiers)).toEqual([["eu"]]);
	});

	it("serves a tenant with dedicated nodes from them alone, and never lends them to others", () => {
		const table = buildRouteTable(
			snapshot(
				[host("own.test", { tenantId: "owner" }), host("other.test", { tenantId: "other" })],
				[
					instance("shared", EU),
					instance("dedicated", EU, { dedicatedTenantId: "owner" }),
					instance("someone-elses", EU, { dedicatedTenantId: "third" }),
				],
			),
		);
		expect(ids(table.lookup("own.test")!.tiers)).toEqual([["dedicated"]]);
		expect(ids(table.lookup("other.test")!.tiers)).toEqual([["shared"]]);
	});

	it("keeps a dedicated tenant out of shared nodes even when its own are all down", () => {
		const table = buildRouteTable(
			snapshot(
				[host("own.test", { tenantId: "owner" })],
				[
					instance("shared", EU),
					instance("dedicated", EU, { dedicatedTenantId: "owner", healthy: false }),
				],
			),
		);
		expect(table.lookup("own.test")!.tiers).toEqual([]);
	});

	it("normalises snapshot hostnames and skips invalid ones", () => {
		const table = buildRouteTable(
			snapshot(
				[host("Shop.Example.NET."), host("bad name.test"), host("-bad.test")],
				[instance("e", EU)],
			),
		);
		expect(table.lookup("shop.example.net")).toBeDefined();
		expect(table.size).toBe(1);
		expect(table.skippedHosts).toEqual(["bad name.test", "-bad.test"]);
	});

	it("holds 100,000 hostnames, sharing one tier list between tenants with the same placement", () => {
		const hosts = Array.from({ length: 100_000 }, (_, i) =>
			host(`t${i}.tenants.example.net`, {
				tenantId: `t${i}`,
				...(i % 2 === 0
					? { allowedRegions: ["us-east"], allowedJurisdictions: ["US"] }
					: { allowedRegions: ["eu-central"], allowedJurisdictions: ["EU"] }),
			}),
		);
		const table = buildRouteTable(snapshot(hosts, [instance("eu", EU), instance("us", US)]));
		expect(table.size).toBe(100_000);
		for (const i of [0, 1, 4_242, 77_777, 99_999]) {
			const route = table.lookup(`t${i}.tenants.example.net`)!;
			expect(route.tenantId).toBe(`t${i}`);
			expect(route.tiers[0]![0]!.id).toBe(i % 2 === 0 ? "us" : "eu");
		}
		// Shared, not copied per tenant: memory grows with hosts, not hosts x instances.
		expect(table.lookup("t1.tenants.example.net")!.tiers).toBe(
			table.lookup("t3.tenants.example.net")!.tiers,
		);
		expect(table.lookup("t100000.tenants.example.net")).toBeUndefined();
	});
});
