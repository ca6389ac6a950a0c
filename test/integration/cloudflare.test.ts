import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildProviders } from "../../functions/providers/build-providers";
import { createDefaultRegistry } from "../../functions/providers/default-registry";
import type { PlatformProviderDeps } from "../../functions/providers/deps";
import {
	CloudflareDnsProvider,
	type CloudflareDnsProviderOptions,
	cloudflareDnsFactory,
} from "../../functions/providers/dns/cloudflare";
import { DnsProviderError } from "../../functions/providers/dns/dns-provider-error";
import { systemClock } from "../../functions/runtime";
import { dnsProviderConformance, expectNoSecret } from "../conformance/dns-provider";
import { type CloudflareApiFake, startCloudflareApiFake } from "../helpers/cloudflare-api-fake";
import { freeTcpPort } from "../helpers/pdns-server";

const ZONE = "tenants.example.test";
const capabilities = { jurisdiction: "global", customerControlled: true };

let fake: CloudflareApiFake;

beforeAll(async () => {
	fake = await startCloudflareApiFake({ zones: [ZONE] });
});
afterAll(async () => {
	await fake?.close();
});

/** Sleeps recorded, none taken: the tests run in no real time. */
function recordingSleep(): { sleep: (ms: number) => Promise<void>; waits: number[] } {
	const waits: number[] = [];
	return { waits, sleep: async (ms) => void waits.push(ms) };
}

function provider(overrides: Partial<CloudflareDnsProviderOptions> = {}): CloudflareDnsProvider {
	return new CloudflareDnsProvider({
		apiBase: fake.apiBase,
		apiToken: fake.token,
		zoneId: fake.zoneId(ZONE),
		zone: ZONE,
		capabilities,
		sleep: recordingSleep().sleep,
		...overrides,
	});
}

const unique = (label: string, zone = ZONE) =>
	`${label}-${crypto.randomUUID().slice(0, 8)}.${zone}`;
const stored = (name: string, zone = ZONE) =>
	fake.records(fake.zoneId(zone)).filter((r) => r.name === name);
const requestsSince = (start: number) => fake.requests.slice(start);

async function failure(run: () => Promise<unknown>): Promise<DnsProviderError> {
	const err = await run().then(
		() => undefined,
		(e: unknown) => e,
	);
	expect(err).toBeInstanceOf(DnsProviderError);
	return err as DnsProviderError;
}

dnsProviderConformance(
	"cloudflare (API v4 fake)",
	async () => {
		const wrongToken = `wrong${crypto.randomUUID().replaceAll("-", "")}`;
		return {
			provider: provider(),
			zone: ZONE,
			wrongCredential: { provider: provider({ apiToken: wrongToken }), credential: wrongToken },
			unservedZone: {
				provider: provider({
					zoneId: "0123456789abcdef0123456789abcdef",
					zone: "unserved.example.test",
				}),
				zone: "unserved.example.test",
			},
			unreachable: provider({ apiBase: `http://127.0.0.1:${await freeTcpPort()}/client/v4` }),
		};
	},
	{ remote: true },
);

describe("cloudflare provider", () => {
	describe("rate limiting", () => {
		it("waits Retry-After on a 429 and retries, without sleeping for real", async () => {
			const { sleep, waits } = recordingSleep();
			const name = unique("busy");
			const start = fake.requests.length;
			fake.rateLimitNext(2, 7);

			await provider({ sleep }).upsert({ name, type: "A", ttl: 300, values: ["192.0.2.1"] });

			expect(waits).toEqual([7000, 7000]);
			expect(requestsSince(start).map((r) => r.status)).toEqual([429, 429, 200, 200]);
			expect(stored(name).map((r) => r.content)).toEqual(["192.0.2.1"]);
		});

		it("backs off exponentially when a 429 carries no Retry-After", async () => {
			const { sleep, waits } = recordingSleep();
			fake.rateLimitNext(3, null);

			await provider({ sleep }).list(ZONE);

			expect(waits).toEqual([1000, 2000, 4000]);
		});

		it("gives up after a bounded number of retries with a retryable error", async () => {
			const { sleep, waits } = recordingSleep();
			const name = unique("throttled");
			fake.rateLimitNext(10, 2);
			try {
				const err = await failure(() =>
					provider({ sleep, maxRetries: 3 }).upsert({
						name,
						type: "A",
						ttl: 300,
						values: ["192.0.2.2"],
					}),
				);
				expect(err).toMatchObject({ code: "rate_limited", retryable: true });
				expect(waits).toEqual([2000, 2000, 2000]);
			} finally {
				fake.rateLimitNext(0);
			}
			expect(stored(name)).toEqual([]);
		});

		it("does not block a job for minutes: a long Retry-After becomes a retryable error at once", async () => {
			const { sleep, waits } = recordingSleep();
			fake.rateLimitNext(1, 300);

			const err = await failure(() => provider({ sleep }).list(ZONE));

			expect(err).toMatchObject({ code: "rate_limited", retryable: true });
			expect(err.message).toMatch(/try again in 300 s/);
			expect(waits).toEqual([]);
		});
	});

	describe("errors", () => {
		it("reports a refused token as an authentication failure, with Cloudflare's code and no token", async () => {
			const token = `bad${crypto.randomUUID().replaceAll("-", "")}`;
			const err = await failure(() => provider({ apiToken: token }).list(ZONE));
			expect(err).toMatchObject({ code: "auth_failed", retryable: false });
			expect(err.message).toBe(
				"Cloudflare refused the API token: authentication failed (HTTP 403: 10000 Authentication error)",
			);
			expectNoSecret(err, token);
		});

		it("reports an unknown zone id as a zone it does not serve, naming zone and id", async () => {
			const zoneId = "ffffffffffffffffffffffffffffffff";
			const err = await failure(() =>
				provider({ zoneId, zone: "gone.example.test" }).upsert({
					name: "www.gone.example.test",
					type: "A",
					ttl: 300,
					values: ["192.0.2.3"],
				}),
			);
			expect(err).toMatchObject({ code: "zone_not_served", retryable: false });
			expect(err.message).toMatch(
				/^zone gone\.example\.test is not served by this Cloudflare account \(zone id f{32}: 7003 Could not route/,
			);
		});

		it("reports what Cloudflare refused, with its code (a CNAME where an A exists)", async () => {
			const dns = provider();
			const name = unique("clash");
			await dns.upsert({ name, type: "A", ttl: 300, values: ["192.0.2.4"] });

			const err = await failure(() =>
				dns.upsert({ name, type: "CNAME", ttl: 300, values: [unique("target")] }),
			);
			expect(err).toMatchObject({ code: "rejected", retryable: false });
			expect(err.message).toMatch(/\(HTTP 400\): 81053 An A, AAAA, or CNAME record with that host/);
			expect(stored(name).map((r) => r.type)).toEqual(["A"]);
		});
	});

	describe("reconciling a record set with Cloudflare's one-record-per-value model", () => {
		it("treats 'an identical record already exists' as success when the value is there", async () => {
			const dns = provider();
			const name = unique("race");
			const start = fake.requests.length;
			// Another writer creates the same value between our read and our create.
			fake.beforeNext("POST", () => {
				fake.seed(fake.zoneId(ZONE), { name, type: "TXT", content: '"token-1"', ttl: 1 });
			});

			await dns.upsert({ name, type: "TXT", ttl: 120, values: ["token-1"] });

			const records = stored(name);
			expect(records).toHaveLength(1);
			expect(records[0]).toMatchObject({ content: '"token-1"', ttl: 120 });
			expect(requestsSince(start).map((r) => `${r.method} ${r.status}`)).toEqual([
				"GET 200",
				"POST 400",
				"GET 200",
				"PATCH 200",
			]);
		});

		it("keeps matching values, rewrites a spare record, deletes the rest, and updates the TTL", async () => {
			const dns = provider();
			const name = unique("multi");
			const zoneId = fake.zoneId(ZONE);
			const seeded = ["192.0.2.10", "192.0.2.11", "192.0.2.12"].map((content) =>
				fake.seed(zoneId, { name, type: "A", content, ttl: 120 }),
			);
			const start = fake.requests.length;

			await dns.upsert({ name, type: "A", ttl: 300, values: ["192.0.2.11", "192.0.2.20"] });

			const after = stored(name);
			expect(after.map((r) => r.content).sort()).toEqual(["192.0.2.11", "192.0.2.20"]);
			expect(after.every((r) => r.ttl === 300)).toBe(true);
			// The kept value is the same record; the new value took over a spare record's id.
			expect(after.find((r) => r.content === "192.0.2.11")?.id).toBe(seeded[1]?.id);
			expect(seeded.map((r) => r.id)).toEqual(expect.arrayContaining(after.map((r) => r.id)));
			expect(requestsSince(start).map((r) => r.method)).toEqual([
				"GET",
				"PATCH",
				"PATCH",
				"DELETE",
			]);
		});

		it("changes a CNAME's target in place, never holding two CNAMEs at one name", async () => {
			const dns = provider();
			const name = unique("www");
			await dns.upsert({ name, type: "CNAME", ttl: 300, values: [unique("one")] });
			const [before] = stored(name);
			const target = unique("two");

			await dns.upsert({ name, type: "CNAME", ttl: 300, values: [target] });

			expect(stored(name)).toEqual([expect.objectContaining({ id: before?.id, content: target })]);
		});

		it("does nothing but read when the set is already as asked", async () => {
			const dns = provider();
			const name = unique("same");
			const set = { name, type: "A" as const, ttl: 300, values: ["192.0.2.30", "192.0.2.31"] };
			await dns.upsert(set);
			const start = fake.requests.length;

			await dns.upsert(set);

			expect(requestsSince(start).map((r) => r.method)).toEqual(["GET"]);
		});

		it("sends TXT values as quoted character-strings of at most 255 bytes and reads them back whole", async () => {
			const dns = provider();
			const name = unique("dkim");
			const value = `v=DKIM1; p=${"A".repeat(300)} "quoted"`;
			await dns.upsert({ name, type: "TXT", ttl: 300, values: [value] });

			const [record] = stored(name);
			expect(record?.content).toBe(
				`"v=DKIM1; p=${"A".repeat(244)}" "${"A".repeat(56)} \\"quoted\\""`,
			);
			expect((await dns.list(name))[0]?.values).toEqual([value]);
		});
	});

	describe("listing", () => {
		it("reads every page", async () => {
			const zone = "paged.example.test";
			const zoneId = fake.addZone(zone);
			const names = Array.from({ length: 12 }, (_, i) => `host-${i}.${zone}`);
			for (const name of names)
				fake.seed(zoneId, { name, type: "A", content: "192.0.2.40", ttl: 300 });
			const start = fake.requests.length;

			const listed = await provider({ zoneId, zone, pageSize: 5 }).list();

			expect(listed.map((r) => r.name).sort()).toEqual([...names].sort());
			expect(
				requestsSince(start).map((r) => new URL(r.path, "http://x").searchParams.get("page")),
			).toEqual(["1", "2", "3"]);
		});

		it("reports Cloudflare's automatic TTL (1) as the 300 s it means, and only its own record types", async () => {
			const zone = "auto.example.test";
			const zoneId = fake.addZone(zone);
			fake.seed(zoneId, { name: `www.${zone}`, type: "A", content: "192.0.2.50", ttl: 1 });
			fake.seed(zoneId, { name: zone, type: "MX", content: `mail.${zone}`, ttl: 300 });

			expect(await provider({ zoneId, zone }).list()).toEqual([
				{ name: `www.${zone}`, type: "A", ttl: 300, values: ["192.0.2.50"] },
			]);
		});

		it("lists nothing for a zone it does not hold, without asking Cloudflare", async () => {
			const start = fake.requests.length;
			expect(await provider().list("example.org")).toEqual([]);
			expect(requestsSince(start)).toEqual([]);
		});
	});

	it("proxies A, AAAA and CNAME records when configured (TTL automatic), never TXT", async () => {
		const dns = provider({ proxied: true });
		const name = unique("proxied");
		await dns.upsert({ name, type: "A", ttl: 300, values: ["192.0.2.60"] });
		await dns.upsert({ name, type: "TXT", ttl: 300, values: ["hello"] });

		const byType = Object.fromEntries(stored(name).map((r) => [r.type, r]));
		expect(byType["A"]).toMatchObject({ proxied: true, ttl: 1 });
		expect(byType["TXT"]).toMatchObject({ proxied: false, ttl: 300 });
	});

	it("declares a 60 s floor, raising lower TTLs (Cloudflare's 1 means automatic, never sent)", async () => {
		const dns = provider();
		expect(dns.capabilities).toEqual({
			jurisdiction: "global",
			customerControlled: true,
			recordTypes: ["A", "AAAA", "CNAME", "TXT"],
			wildcard: true,
			minTtl: 60,
		});
		const name = unique("floor");
		await dns.upsert({ name, type: "A", ttl: 1, values: ["192.0.2.70"] });
		expect(stored(name)[0]?.ttl).toBe(60);
	});
});

describe("cloudflare settings", () => {
	const deps = (env: Record<string, string | undefined>) =>
		({ env, clock: systemClock }) as unknown as PlatformProviderDeps;
	const declaration = (settings: Record<string, unknown>) => ({
		"dns-cf": { kind: "dns" as const, type: "cloudflare", settings, capabilities },
	});

	it("is registered in the default registry", () => {
		expect(createDefaultRegistry().get("dns", "cloudflare")).toBe(cloudflareDnsFactory);
	});

	it("resolves the token from { env } and sends that token", async () => {
		const settings = {
			apiToken: { env: "CLOUDFLARE_API_TOKEN" },
			zoneId: fake.zoneId(ZONE),
			zone: ZONE,
			apiBase: fake.apiBase,
		};
		const build = (env: Record<string, string>) =>
			buildProviders(declaration(settings), createDefaultRegistry(), deps(env)).get(
				"dns",
				"dns-cf",
			);

		await expect(build({ CLOUDFLARE_API_TOKEN: fake.token }).list(ZONE)).resolves.toBeInstanceOf(
			Array,
		);
		const err = await failure(() => build({ CLOUDFLARE_API_TOKEN: "other" }).list(ZONE));
		expect(err.code).toBe("auth_failed");
	});

	it("fails at build time naming the missing variable", () => {
		expect(() =>
			buildProviders(
				declaration({
					apiToken: { env: "CLOUDFLARE_API_TOKEN" },
					zoneId: fake.zoneId(ZONE),
					zone: ZONE,
				}),
				createDefaultRegistry(),
				deps({}),
			),
		).toThrow(/settings\.apiToken: environment variable CLOUDFLARE_API_TOKEN is not set/);
	});

	it("never echoes a literal token in a settings error", () => {
		const token = `tok${crypto.randomUUID().replaceAll("-", "")}`;
		for (const settings of [
			{ apiToken: token, zoneId: "not-a-zone-id", zone: ZONE },
			{ apiToken: token, zoneId: fake.zoneId(ZONE), zone: ZONE, apiBase: "ftp://x" },
			{ apiToken: token, zoneId: fake.zoneId(ZONE), zone: ZONE, token },
		]) {
			let message = "";
			try {
				buildProviders(declaration(settings), createDefaultRegistry(), deps({}));
			} catch (err) {
				message = (err as Error).message;
			}
			expect(message).toMatch(/^\$\.providers\["dns-cf"\]\.settings/);
			expect(message).not.toContain(token);
		}
	});

	it("defaults to the public API, unproxied, and names apiBase as its endpoint setting", () => {
		const parsed = cloudflareDnsFactory.settingsSchema.parse({
			apiToken: { env: "CLOUDFLARE_API_TOKEN" },
			zoneId: "0123456789abcdef0123456789abcdef",
			zone: ZONE,
		});
		expect(parsed).toMatchObject({
			apiBase: "https://api.cloudflare.com/client/v4",
			proxied: false,
		});
		expect(cloudflareDnsFactory.endpointSettings).toEqual(["apiBase"]);
	});
});
