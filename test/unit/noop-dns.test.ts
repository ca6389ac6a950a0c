import { describe, expect, it } from "vitest";
import { NoopDnsProvider, noopDnsFactory } from "../../functions/providers/dns/noop-dns";
import { dnsProviderConformance } from "../conformance/dns-provider";

const capabilities = { jurisdiction: "regional", customerControlled: false };

dnsProviderConformance("noop", async () => ({
	provider: new NoopDnsProvider(capabilities),
	zone: "conformance.localhost",
}));

describe("noop DNS provider", () => {
	it("declares all four record types, wildcards and a 1 s floor, keeping the configured jurisdiction", () => {
		const provider = new NoopDnsProvider({ jurisdiction: "EU", customerControlled: true });
		expect(provider.capabilities).toEqual({
			jurisdiction: "EU",
			customerControlled: true,
			recordTypes: ["A", "AAAA", "CNAME", "TXT"],
			wildcard: true,
			minTtl: 1,
		});
	});

	it("accepts no settings at all", () => {
		expect(noopDnsFactory.settingsSchema.safeParse({}).success).toBe(true);
		expect(noopDnsFactory.settingsSchema.safeParse({ apiUrl: "https://x" }).success).toBe(false);
	});

	it("lists only the records under the zone asked for, and everything without one", async () => {
		const provider = new NoopDnsProvider(capabilities);
		const inside = { name: "a.one.localhost", type: "A" as const, ttl: 60, values: ["127.0.0.1"] };
		const apex = { name: "one.localhost", type: "TXT" as const, ttl: 60, values: ["apex"] };
		// Shares a suffix with the zone but is not under it.
		const lookalike = {
			name: "someone.localhost",
			type: "A" as const,
			ttl: 60,
			values: ["127.0.0.1"],
		};
		for (const r of [inside, apex, lookalike]) await provider.upsert(r);

		expect(await provider.list("one.localhost")).toEqual([inside, apex]);
		expect(await provider.list()).toHaveLength(3);
	});

	it("accepts wildcard names and ACME challenge labels", async () => {
		const provider = new NoopDnsProvider(capabilities);
		await provider.upsert({ name: "*.shop.localhost", type: "A", ttl: 60, values: ["127.0.0.1"] });
		await provider.upsert({
			name: "_acme-challenge.shop.localhost",
			type: "TXT",
			ttl: 60,
			values: ["tok"],
		});
		expect((await provider.list("shop.localhost")).map((r) => r.name)).toEqual([
			"*.shop.localhost",
			"_acme-challenge.shop.localhost",
		]);
	});

	it("keeps AAAA values in canonical form, as a DNS server would answer them", async () => {
		const provider = new NoopDnsProvider(capabilities);
		await provider.upsert({
			name: "v6.localhost",
			type: "AAAA",
			ttl: 60,
			values: ["2001:DB8:0:0:0:0:0:1"],
		});
		expect((await provider.list())[0]?.values).toEqual(["2001:db8::1"]);
	});

	it.each([
		[{ name: "Upper.localhost", type: "A", ttl: 60, values: ["127.0.0.1"] }, /lower-case DNS name/],
		[{ name: "dot.localhost.", type: "A", ttl: 60, values: ["127.0.0.1"] }, /lower-case DNS name/],
		[{ name: "a.localhost", type: "A", ttl: 60, values: ["::1"] }, /not a valid A value/],
		[{ name: "a.localhost", type: "A", ttl: 60, values: ["256.0.0.1"] }, /not a valid A value/],
		[
			{ name: "a.localhost", type: "AAAA", ttl: 60, values: ["127.0.0.1"] },
			/not a valid AAAA value/,
		],
		[
			{ name: "a.localhost", type: "CNAME", ttl: 60, values: ["b.localhost", "c.localhost"] },
			/exactly one/,
		],
		[{ name: "a.localhost", type: "A", ttl: 60, values: [] }, /at least one value/],
		[{ name: "a.localhost", type: "A", ttl: -5, values: ["127.0.0.1"] }, /non-negative integer/],
		[{ name: "a.localhost", type: "MX", ttl: 60, values: ["mail.localhost"] }, /not supported/],
	])("refuses %j, as a real DNS server would", async (record, message) => {
		const provider = new NoopDnsProvider(capabilities);
		await expect(provider.upsert(record as never)).rejects.toThrow(message);
		expect(await provider.list()).toEqual([]);
	});

	it("hands out copies, so a caller mutating a result cannot change what is stored", async () => {
		const provider = new NoopDnsProvider(capabilities);
		const values = ["127.0.0.1"];
		await provider.upsert({ name: "copy.localhost", type: "A", ttl: 60, values });
		values.push("127.0.0.2");
		(await provider.list())[0]?.values.push("127.0.0.3");
		expect((await provider.list())[0]?.values).toEqual(["127.0.0.1"]);
	});
});
