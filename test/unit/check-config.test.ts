import { describe, expect, it } from "vitest";
import { z } from "zod";
import { defaultConfig } from "../../functions/config/default-config";
import { createNodeRegistry } from "../../functions/node/node-registry";
import { checkConfig } from "../../functions/policy/check-config";
import { formatViolation } from "../../functions/policy/violations";
import { createDefaultRegistry } from "../../functions/providers/default-registry";
import { noopDnsFactory } from "../../functions/providers/dns/noop-dns";

/** The default registry plus a DNS type with an endpoint setting, to exercise the https rule. */
function registry() {
	return createDefaultRegistry().register({
		...noopDnsFactory,
		type: "http-api-dns",
		settingsSchema: z.strictObject({ apiUrl: z.string() }),
		endpointSettings: ["apiUrl"],
	});
}

// biome-ignore lint/suspicious/noExplicitAny: these tests build deliberately malformed documents
type Doc = any;

function base(): Doc {
	return structuredClone(defaultConfig("data"));
}

function lines(doc: unknown): string[] {
	const result = checkConfig(doc, registry());
	return result.ok ? [] : result.violations.map(formatViolation);
}

/** A sovereign deployment with one provider per jurisdiction: the passing twin of many cases. */
function sovereignDoc(): Doc {
	const doc = base();
	doc.providers = {
		...doc.providers,
		"dns-eu": {
			kind: "dns",
			type: "http-api-dns",
			settings: { apiUrl: "https://dns.eu.example" },
			capabilities: { jurisdiction: "EU" },
		},
		"dns-us": {
			kind: "dns",
			type: "http-api-dns",
			settings: { apiUrl: "https://dns.us.example" },
			capabilities: { jurisdiction: "US" },
		},
		"dns-global": {
			kind: "dns",
			type: "http-api-dns",
			settings: { apiUrl: "https://dns.example" },
			capabilities: { jurisdiction: "global" },
		},
	};
	doc.profiles.sovereign = {
		providers: { issuer: "internal-ca", storage: "regional-store", relay: "direct" },
		regions: { "eu-central": { dns: "dns-eu" }, "us-east": { dns: "dns-us" } },
	};
	return doc;
}

describe("config check", () => {
	it("accepts the built-in default", () => {
		const result = checkConfig(defaultConfig("data"), registry());
		expect(result.ok).toBe(true);
		if (result.ok) {
			expect(result.config.baseDomain).toBe("localhost");
			expect(result.config.regions.map((r) => [r.id, r.jurisdiction])).toEqual([
				["eu-central", "EU"],
				["us-east", "US"],
			]);
			expect(result.config.ports).toEqual({ https: 8443, http: 8080, api: 8787 });
		}
	});

	it("accepts a sovereign profile whose providers sit in each region's jurisdiction", () => {
		expect(lines(sovereignDoc())).toEqual([]);
	});

	it("refuses a sovereign profile bound to a provider of another jurisdiction", () => {
		const doc = sovereignDoc();
		doc.profiles.sovereign.regions!["us-east"] = { dns: "dns-eu" };
		expect(lines(doc)).toEqual([
			'$.profiles.sovereign.regions["us-east"].dns: sovereign profile: region "us-east" is in jurisdiction US but provider "dns-eu" declares jurisdiction EU; bind a provider inside US for this region',
		]);
	});

	it("refuses a sovereign profile bound to a global provider, once per region", () => {
		const doc = sovereignDoc();
		doc.profiles.sovereign = {
			providers: {
				dns: "dns-global",
				issuer: "internal-ca",
				storage: "regional-store",
				relay: "direct",
			},
		};
		const out = lines(doc);
		expect(out).toHaveLength(2);
		expect(out[0]).toMatch(
			/^\$\.profiles\.sovereign\.providers\.dns: sovereign profile: region "eu-central" is in jurisdiction EU but provider "dns-global" declares jurisdiction global/,
		);
		expect(out[1]).toMatch(/region "us-east" is in jurisdiction US/);
	});

	it("refuses an http:// provider endpoint and accepts https:// or loopback http://", () => {
		const doc = sovereignDoc();
		doc.providers["dns-eu"].settings.apiUrl = "http://dns.eu.example:8081";
		expect(lines(doc)).toEqual([
			'$.providers["dns-eu"].settings.apiUrl: must be an https:// URL (http:// is allowed only for loopback addresses)',
		]);
		doc.providers["dns-eu"].settings.apiUrl = "http://127.0.0.1:8081";
		expect(lines(doc)).toEqual([]);
	});

	it("refuses a region without a database URL", () => {
		const doc = base();
		doc.regions[1].database = {};
		expect(lines(doc)).toEqual(["$.regions[1].database.url: is required (string)"]);
	});

	it("refuses a database URL with an unsupported scheme", () => {
		const doc = base();
		doc.regions[0].database.url = "postgres://db.example/castellan";
		expect(lines(doc)).toEqual([
			"$.regions[0].database.url: unsupported database URL (use file:PATH, :memory:, libsql://HOST, http(s)://HOST or ws(s)://HOST)",
		]);
		doc.regions[0].database.url = "libsql://eu.turso.example";
		expect(lines(doc)).toEqual([]);
	});

	it("refuses an unknown provider type, naming the known ones", () => {
		const doc = base();
		doc.providers["localhost-dns"].type = "route53";
		expect(lines(doc)).toEqual([
			`$.providers["localhost-dns"].type: unknown dns provider type "route53" (known: ${registry().types("dns").join(", ")})`,
		]);
	});

	it("refuses settings a provider type does not take", () => {
		const doc = base();
		doc.providers["localhost-dns"].settings = { zone: "example.net" };
		expect(lines(doc)).toEqual(['$.providers["localhost-dns"].settings: unknown field "zone"']);
	});

	it("refuses duplicate region ids and bad backup regions", () => {
		const doc = base();
		doc.regions[1].id = "eu-central";
		expect(lines(doc)).toContain('$.regions[1].id: duplicate region id "eu-central"');
		const doc2 = base();
		doc2.regions[0].backupRegions = ["eu-central", "ap-south"];
		expect(lines(doc2)).toEqual([
			"$.regions[0].backupRegions[0]: a region cannot be its own backup",
			'$.regions[0].backupRegions[1]: unknown region "ap-south"',
		]);
		doc2.regions[0].backupRegions = ["us-east"];
		expect(lines(doc2)).toEqual([]);
	});

	it("refuses two listeners on one port", () => {
		const doc = base();
		doc.ports = { https: 8443, http: 8443, api: 8787 };
		expect(lines(doc)).toEqual(["$.ports.http: port 8443 is already used by ports.https"]);
	});

	it("refuses a binding to an unknown provider or to a provider of another kind", () => {
		const doc = base();
		doc.profiles.standard.providers.dns = "nope";
		doc.profiles.standard.providers.issuer = "localhost-dns";
		expect(lines(doc)).toEqual([
			'$.profiles.standard.providers.dns: unknown provider "nope"',
			'$.profiles.standard.providers.issuer: provider "localhost-dns" is a dns provider, not issuer',
		]);
	});

	it("refuses a standard profile that leaves a kind unbound", () => {
		const doc = base();
		delete doc.profiles.standard.providers.relay;
		expect(lines(doc)).toEqual([
			'$.profiles.standard.providers.relay: no relay provider for region "eu-central": bind one here or under profiles.standard.regions.eu-central.relay',
			'$.profiles.standard.providers.relay: no relay provider for region "us-east": bind one here or under profiles.standard.regions.us-east.relay',
		]);
	});

	it("refuses a byo profile bound to platform-operated DNS, accepts customer-controlled", () => {
		const doc = base();
		doc.profiles.byo = { providers: { dns: "localhost-dns" } };
		expect(lines(doc)).toEqual([
			'$.profiles.byo.providers.dns: byo profile: dns must be customer-controlled, but provider "localhost-dns" does not declare customerControlled: true',
		]);
		doc.providers["customer-dns"] = {
			kind: "dns",
			type: "noop",
			capabilities: { jurisdiction: "global", customerControlled: true },
		};
		doc.profiles.byo = { providers: { dns: "customer-dns" } };
		expect(lines(doc)).toEqual([]);
	});

	it("refuses per-region bindings for a region that does not exist", () => {
		const doc = base();
		doc.profiles.standard.regions = { "ap-south": { dns: "localhost-dns" } };
		expect(lines(doc)).toEqual([
			'$.profiles.standard.regions["ap-south"]: unknown region "ap-south"',
		]);
	});

	it("refuses structural errors with the field's path", () => {
		const doc = base();
		doc.regions[0].jurisdiction = "eu";
		doc.baseDomain = "Not A Domain";
		doc.colour = "blue";
		expect(lines(doc).sort()).toEqual([
			"$.baseDomain: must be a lower-case DNS name",
			'$.regions[0].jurisdiction: must be an upper-case jurisdiction code such as "EU" or "US"',
			'$: unknown field "colour"',
		]);
	});

	it("refuses a provider setting that names a missing provider or one of another kind", () => {
		const doc = base();
		doc.providers.acme = {
			kind: "issuer",
			type: "acme",
			settings: { directoryUrl: "https://acme.example.test/dir", dnsProvider: "missing-dns" },
			capabilities: { jurisdiction: "global" },
		};
		const check = (d: unknown) => {
			const result = checkConfig(d, createNodeRegistry());
			return result.ok ? [] : result.violations.map(formatViolation);
		};
		expect(check(doc)).toEqual([
			'$.providers.acme.settings.dnsProvider: unknown provider "missing-dns"',
		]);
		doc.providers.acme.settings.dnsProvider = "internal-ca";
		expect(check(doc)).toEqual([
			'$.providers.acme.settings.dnsProvider: provider "internal-ca" is an issuer provider, not dns',
		]);
		doc.providers.acme.settings.dnsProvider = "localhost-dns";
		expect(check(doc)).toEqual([]);
	});

	it("refuses a short inline webhook secret and an http notify URL, accepts env references", () => {
		const doc = base();
		doc.webhooks = {
			platforms: [
				{ id: "acme", secrets: ["too-short"], notifyUrl: "http://platform.example/hooks" },
			],
		};
		expect(lines(doc)).toEqual([
			"$.webhooks.platforms[0].secrets[0]: a secret given inline must be at least 32 characters",
		]);
		doc.webhooks.platforms[0].secrets = [{ env: "ACME_WEBHOOK_SECRET" }];
		expect(lines(doc)).toEqual([
			"$.webhooks.platforms[0].notifyUrl: must be an https:// URL (http:// is allowed only for loopback addresses)",
		]);
		doc.webhooks.platforms[0].notifyUrl = "https://platform.example/hooks";
		expect(lines(doc)).toEqual([]);
	});

	it("refuses a config that enables no profile", () => {
		const doc = base();
		doc.profiles = {};
		expect(lines(doc)).toEqual([
			"$.profiles: at least one of standard, sovereign, byo must be defined",
		]);
	});
});
