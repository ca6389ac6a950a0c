import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildProviders } from "../../functions/providers/build-providers";
import { createDefaultRegistry } from "../../functions/providers/default-registry";
import type { PlatformProviderDeps } from "../../functions/providers/deps";
import { DnsProviderError } from "../../functions/providers/dns/dns-provider-error";
import {
	PowerDnsProvider,
	type PowerDnsProviderOptions,
	powerDnsFactory,
} from "../../functions/providers/dns/powerdns";
import { systemClock } from "../../functions/runtime";
import { dnsProviderConformance, expectNoSecret } from "../conformance/dns-provider";
import { freeTcpPort, type PdnsServer, startPdnsServer } from "../helpers/pdns-server";

const ZONE = "tenants.example.test";
const OTHER_ZONE = "other.example.test";
const capabilities = { jurisdiction: "EU", customerControlled: false };

let pdns: PdnsServer;

beforeAll(async () => {
	pdns = await startPdnsServer({ zones: [ZONE, OTHER_ZONE] });
});
afterAll(async () => {
	await pdns?.stop();
});

function provider(overrides: Partial<PowerDnsProviderOptions> = {}): PowerDnsProvider {
	return new PowerDnsProvider({
		apiUrl: pdns.apiUrl,
		apiKey: pdns.apiKey,
		zones: [ZONE, OTHER_ZONE],
		capabilities,
		...overrides,
	});
}

const unique = (label: string, zone = ZONE) =>
	`${label}-${crypto.randomUUID().slice(0, 8)}.${zone}`;

async function failure(run: () => Promise<unknown>): Promise<DnsProviderError> {
	const err = await run().then(
		() => undefined,
		(e: unknown) => e,
	);
	expect(err).toBeInstanceOf(DnsProviderError);
	return err as DnsProviderError;
}

dnsProviderConformance(
	"powerdns",
	async () => {
		const wrongKey = `wrong-${crypto.randomUUID()}`;
		return {
			provider: provider(),
			zone: ZONE,
			wrongCredential: { provider: provider({ apiKey: wrongKey }), credential: wrongKey },
			unservedZone: {
				provider: provider({ zones: ["unserved.example.test"] }),
				zone: "unserved.example.test",
			},
			unreachable: provider({ apiUrl: `http://127.0.0.1:${await freeTcpPort()}` }),
		};
	},
	{ remote: true },
);

describe("powerdns provider against a real pdns_server", () => {
	it("serves an A record over DNS after upsert, and stops after remove", async () => {
		const dns = provider();
		const name = unique("www");
		await dns.upsert({ name, type: "A", ttl: 60, values: ["192.0.2.30", "192.0.2.31"] });

		expect((await pdns.query(name, "A")).sort()).toEqual(["192.0.2.30", "192.0.2.31"]);

		await dns.remove(name, "A");
		expect(await pdns.query(name, "A")).toEqual([]);
	});

	it("serves a TXT record over DNS after upsert (the ACME challenge shape), and stops after remove", async () => {
		const dns = provider();
		const name = `_acme-challenge.${unique("shop")}`;
		const token = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0";
		await dns.upsert({ name, type: "TXT", ttl: 60, values: [token] });

		expect(await pdns.query(name, "TXT")).toEqual([token]);

		await dns.remove(name, "TXT");
		expect(await pdns.query(name, "TXT")).toEqual([]);
	});

	it("round-trips awkward TXT values: quotes, backslashes, non-ASCII, and more than 255 bytes", async () => {
		const dns = provider();
		const name = unique("txt");
		const long = `v=DKIM1; k=rsa; p=${"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A".repeat(12)}`;
		const odd = 'say "hi" \\ to Zoë 🛡️';
		await dns.upsert({ name, type: "TXT", ttl: 60, values: [long, odd] });

		const [set] = (await dns.list(ZONE)).filter((r) => r.name === name);
		expect(set?.values.sort()).toEqual([long, odd].sort());
		expect((await pdns.query(name, "TXT")).sort()).toEqual([long, odd].sort());
	});

	it("serves a CNAME with its target as given (no trailing dot in, none out)", async () => {
		const dns = provider();
		const name = unique("alias");
		const target = unique("origin");
		await dns.upsert({ name, type: "CNAME", ttl: 60, values: [target] });

		expect(await pdns.query(name, "CNAME")).toEqual([target]);
		expect((await dns.list(ZONE)).find((r) => r.name === name)?.values).toEqual([target]);
	});

	it("stores AAAA values in canonical form and serves them", async () => {
		const dns = provider();
		const name = unique("v6");
		await dns.upsert({ name, type: "AAAA", ttl: 60, values: ["2001:DB8:0:0:0:0:0:1"] });

		expect(await pdns.query(name, "AAAA")).toEqual(["2001:db8::1"]);
		expect((await dns.list(ZONE)).find((r) => r.name === name)?.values).toEqual(["2001:db8::1"]);
	});

	it("lists apex records it manages but never the zone's SOA and NS, which stay served", async () => {
		const dns = provider();
		await dns.upsert({ name: OTHER_ZONE, type: "TXT", ttl: 60, values: ["apex marker"] });

		const apex = (await dns.list(OTHER_ZONE)).filter((r) => r.name === OTHER_ZONE);
		expect(apex).toEqual([{ name: OTHER_ZONE, type: "TXT", ttl: 60, values: ["apex marker"] }]);
		expect(await pdns.query(OTHER_ZONE, "NS")).toEqual([`ns1.${OTHER_ZONE}`]);
	});

	it("lists only under the zone asked for, and across every served zone without one", async () => {
		const dns = provider();
		const here = unique("here");
		const there = unique("there", OTHER_ZONE);
		await dns.upsert({ name: here, type: "A", ttl: 60, values: ["192.0.2.40"] });
		await dns.upsert({ name: there, type: "A", ttl: 60, values: ["192.0.2.41"] });

		const inZone = (await dns.list(ZONE)).map((r) => r.name);
		expect(inZone).toContain(here);
		expect(inZone).not.toContain(there);
		const everywhere = (await dns.list()).map((r) => r.name);
		expect(everywhere).toEqual(expect.arrayContaining([here, there]));
		// A name under a served zone narrows the listing to it.
		expect((await dns.list(here)).map((r) => r.name)).toEqual([here]);
		// A zone that overlaps nothing served holds nothing this provider manages.
		expect(await dns.list("elsewhere.example.org")).toEqual([]);
	});

	it("refuses a name outside its zones before sending anything, naming the name and the zones", async () => {
		const err = await failure(() =>
			provider().upsert({ name: "www.example.org", type: "A", ttl: 60, values: ["192.0.2.1"] }),
		);
		expect(err.code).toBe("outside_zones");
		expect(err.message).toBe(
			`www.example.org is outside every zone this provider serves (${ZONE}, ${OTHER_ZONE})`,
		);
	});

	it("says which zone the server does not have", async () => {
		const err = await failure(() =>
			provider({ zones: ["missing.example.test"] }).upsert({
				name: "www.missing.example.test",
				type: "A",
				ttl: 60,
				values: ["192.0.2.1"],
			}),
		);
		expect(err).toMatchObject({ code: "zone_not_served", retryable: false });
		expect(err.message).toMatch(
			/^zone missing\.example\.test is not served by this PowerDNS server/,
		);
		expectNoSecret(err, pdns.apiKey);
	});

	it("reports a refused change with PowerDNS's reason and without the key (a CNAME beside an A)", async () => {
		const dns = provider();
		const name = unique("clash");
		await dns.upsert({ name, type: "A", ttl: 60, values: ["192.0.2.50"] });

		const err = await failure(() =>
			dns.upsert({ name, type: "CNAME", ttl: 60, values: [unique("target")] }),
		);
		expect(err).toMatchObject({ code: "rejected", retryable: false });
		expect(err.message).toMatch(
			/^PowerDNS refused the change in zone tenants\.example\.test \(HTTP 422\): .+/,
		);
		expectNoSecret(err, pdns.apiKey);
		expect(await pdns.query(name, "A")).toEqual(["192.0.2.50"]);
	});

	it("refuses an invalid record set without writing it", async () => {
		const dns = provider();
		const name = unique("bad");
		const err = await failure(() => dns.upsert({ name, type: "A", ttl: 60, values: ["::1"] }));
		expect(err).toMatchObject({ code: "invalid_record", retryable: false });
		expect((await dns.list(ZONE)).filter((r) => r.name === name)).toEqual([]);
	});

	it("turns a stopped server into a retryable error on every call", async () => {
		const own = await startPdnsServer({ zones: [ZONE] });
		try {
			const dns = provider({ apiUrl: own.apiUrl, apiKey: own.apiKey, zones: [ZONE] });
			const name = unique("down");
			await dns.upsert({ name, type: "A", ttl: 60, values: ["192.0.2.60"] });
			await own.stop();

			for (const run of [
				() => dns.upsert({ name, type: "A", ttl: 60, values: ["192.0.2.61"] }),
				() => dns.remove(name, "A"),
				() => dns.list(ZONE),
			]) {
				const err = await failure(run);
				expect(err).toMatchObject({ code: "unavailable", retryable: true });
				expect(err.message).toMatch(
					/^PowerDNS at http:\/\/127\.0\.0\.1:\d+ is unavailable: ECONNREFUSED$/,
				);
				expectNoSecret(err, own.apiKey);
			}
		} finally {
			await own.stop();
		}
	});

	it("declares what it can do, keeping the configured jurisdiction and an optional default TTL", () => {
		expect(provider({ defaultTtl: 120 }).capabilities).toEqual({
			jurisdiction: "EU",
			customerControlled: false,
			recordTypes: ["A", "AAAA", "CNAME", "TXT"],
			wildcard: true,
			minTtl: 1,
			defaultTtl: 120,
		});
		expect(provider().capabilities).not.toHaveProperty("defaultTtl");
	});
});

describe("powerdns settings", () => {
	const deps = (env: Record<string, string | undefined>) =>
		({ env, clock: systemClock }) as unknown as PlatformProviderDeps;

	const declaration = (settings: Record<string, unknown>) => ({
		"dns-eu": { kind: "dns" as const, type: "powerdns", settings, capabilities },
	});

	it("is registered in the default registry", () => {
		expect(createDefaultRegistry().get("dns", "powerdns")).toBe(powerDnsFactory);
	});

	it("resolves { env } from the environment it is given, and the key read there is the one sent", async () => {
		const settings = { apiUrl: pdns.apiUrl, apiKey: { env: "PDNS_API_KEY" }, zones: [ZONE] };
		const right = buildProviders(
			declaration(settings),
			createDefaultRegistry(),
			deps({ PDNS_API_KEY: pdns.apiKey }),
		).get("dns", "dns-eu");
		await expect(right.list(ZONE)).resolves.toBeInstanceOf(Array);

		const wrong = buildProviders(
			declaration(settings),
			createDefaultRegistry(),
			deps({ PDNS_API_KEY: "not-the-key" }),
		).get("dns", "dns-eu");
		expect(await failure(() => wrong.list(ZONE))).toMatchObject({ code: "auth_failed" });
	});

	it("fails at build time naming the variable and the setting when the variable is missing", () => {
		for (const env of [{}, { PDNS_API_KEY: "  " }]) {
			expect(() =>
				buildProviders(
					declaration({ apiUrl: pdns.apiUrl, apiKey: { env: "PDNS_API_KEY" }, zones: [ZONE] }),
					createDefaultRegistry(),
					deps(env),
				),
			).toThrow(
				'$.providers["dns-eu"]: cannot create dns provider "powerdns": settings.apiKey: environment variable PDNS_API_KEY is not set (it must hold the apiKey)',
			);
		}
	});

	it("never echoes a literal key in a settings error", () => {
		const key = `literal-${crypto.randomUUID()}`;
		const bad = [
			{ apiUrl: "ftp://127.0.0.1", apiKey: key, zones: [ZONE] },
			{ apiUrl: pdns.apiUrl, apiKey: key, zones: [] },
			{ apiUrl: pdns.apiUrl, apiKey: key, zones: [ZONE], extra: key },
			{ apiUrl: pdns.apiUrl, apiKey: { env: key }, zones: [ZONE] },
		];
		for (const settings of bad) {
			let message = "";
			try {
				buildProviders(declaration(settings), createDefaultRegistry(), deps({}));
			} catch (err) {
				message = String((err as Error).message);
			}
			expect(message).toMatch(/^\$\.providers\["dns-eu"\]\.settings/);
			expect(message).not.toContain(key);
		}
	});

	it("takes defaults for serverId and timeout, and refuses unknown fields and bad zones", () => {
		const parsed = powerDnsFactory.settingsSchema.parse({
			apiUrl: "http://127.0.0.1:8081",
			apiKey: { env: "PDNS_API_KEY" },
			zones: [ZONE],
		});
		expect(parsed).toEqual({
			apiUrl: "http://127.0.0.1:8081",
			serverId: "localhost",
			apiKey: { env: "PDNS_API_KEY" },
			zones: [ZONE],
			timeoutMs: 10_000,
		});
		const refuse = (settings: Record<string, unknown>) =>
			powerDnsFactory.settingsSchema.safeParse({
				apiUrl: "http://127.0.0.1:8081",
				apiKey: "k",
				zones: [ZONE],
				...settings,
			}).success;
		expect(refuse({ zones: ["Tenants.Example.Test"] })).toBe(false);
		expect(refuse({ zones: ["tenants.example.test."] })).toBe(false);
		expect(refuse({ apiKey: { env: "lower_case" } })).toBe(false);
		expect(refuse({ apiKey: "" })).toBe(false);
		expect(refuse({ unknown: true })).toBe(false);
		expect(powerDnsFactory.endpointSettings).toEqual(["apiUrl"]);
	});
});
