import { readFileSync } from "node:fs";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditEvents, providerBindings } from "../../db/schema/region";
import { createApp } from "../../functions/api/app";
import { createApiToken } from "../../functions/services/api-tokens";
import { registerNode } from "../../functions/services/nodes";
import { runDueJobs } from "../../functions/services/provisioning/run-jobs";
import { startPdnsServer } from "../helpers/pdns-server";
import { createTestPlatform, type TestPlatform } from "../helpers/test-platform";

const CUSTOMER_ZONE = "customer.example.test";
let pdns: Awaited<ReturnType<typeof startPdnsServer>>;
let t: TestPlatform;
let app: ReturnType<typeof createApp>;
let token: string;

beforeAll(async () => {
	pdns = await startPdnsServer({ zones: [CUSTOMER_ZONE] });
	t = await createTestPlatform({
		edit: (doc) => {
			doc.baseDomain = CUSTOMER_ZONE;
		},
	});
	app = createApp(t.platform);
	token = (await createApiToken(t.platform.store, t.platform.clock, { scopes: ["tenants:write"] }))
		.token;
	await registerNode({
		ctx: { platform: t.platform, actor: "test" },
		input: {
			regionId: "eu-central",
			name: "eu-1",
			address: "192.0.2.40",
			instanceUrls: ["http://127.0.0.1:9"],
		},
	});
}, 60_000);
afterAll(async () => {
	t?.close();
	await pdns?.stop();
});

const headers = () => ({ "content-type": "application/json", authorization: `Bearer ${token}` });

async function createTenant(slug: string, profile: string) {
	const res = await app.request("/v1/tenants", {
		method: "POST",
		headers: headers(),
		body: JSON.stringify({ slug, homeRegion: "eu-central", profile }),
	});
	expect(res.status).toBe(201);
	return ((await res.json()) as { tenant: { id: string } }).tenant.id;
}

function bind(tenantId: string, kind: string, body: unknown) {
	return app.request(`/v1/tenants/${tenantId}/providers/${kind}`, {
		method: "PUT",
		headers: headers(),
		body: JSON.stringify(body),
	});
}

const customerDns = (extra: Record<string, unknown> = {}) => ({
	type: "powerdns",
	settings: { apiUrl: pdns.apiUrl, apiKey: pdns.apiKey, zones: [CUSTOMER_ZONE] },
	capabilities: { jurisdiction: "EU", customerControlled: true },
	...extra,
});

async function violations(res: Response) {
	expect(res.status).toBe(400);
	return ((await res.json()) as { error: { violations: Array<{ path: string; rule: string }> } })
		.error.violations;
}

describe("a tenant's own providers", () => {
	it("writes a byo tenant's records through the customer's own PowerDNS, credentials sealed", async () => {
		const tenantId = await createTenant("shop", "byo");
		const res = await bind(tenantId, "dns", customerDns());
		expect(res.status).toBe(200);
		await runDueJobs(t.platform, { holder: "test" });
		expect(await pdns.query(`shop.${CUSTOMER_ZONE}`, "A")).toEqual(["192.0.2.40"]);

		const eu = t.platform.store.region("eu-central").db;
		const [row] = await eu
			.select()
			.from(providerBindings)
			.where(eq(providerBindings.tenantId, tenantId));
		expect(row?.settingsCiphertext).toMatch(/^cs1\./);
		expect(readFileSync(`${t.dir}/eu-central.db`).includes(Buffer.from(pdns.apiKey))).toBe(false);
		const [bound] = await eu
			.select()
			.from(auditEvents)
			.where(eq(auditEvents.action, "provider.bound"));
		expect(bound?.data).toMatchObject({ provider: "tenant:dns", type: "powerdns" });
		expect(JSON.stringify(bound?.data)).not.toContain(pdns.apiKey);
	});

	it("refuses a byo provider that is not customer-controlled", async () => {
		const tenantId = await createTenant("shop-two", "byo");
		const v = await violations(
			await bind(tenantId, "dns", customerDns({ capabilities: { jurisdiction: "EU" } })),
		);
		expect(v).toEqual([
			{
				path: "$.capabilities.customerControlled",
				rule: 'byo profile: dns must be customer-controlled, but provider "tenant:dns" does not declare customerControlled: true',
			},
		]);
	});

	it("refuses a sovereign tenant's provider outside its jurisdiction", async () => {
		const tenantId = await createTenant("sov", "sovereign");
		const v = await violations(
			await bind(
				tenantId,
				"dns",
				customerDns({ capabilities: { jurisdiction: "US", customerControlled: true } }),
			),
		);
		expect(v.map((x) => x.path)).toEqual(["$.capabilities.jurisdiction"]);
		expect(v[0]?.rule).toMatch(
			/region "eu-central" is in jurisdiction EU but provider "tenant:dns" declares jurisdiction US/,
		);
	});

	it("refuses settings that would read this server's environment, unknown types and plain-http endpoints", async () => {
		const tenantId = await createTenant("sneaky", "byo");
		const env = await violations(
			await bind(
				tenantId,
				"dns",
				customerDns({
					settings: {
						apiUrl: pdns.apiUrl,
						apiKey: { env: "CASTELLAN_MASTER_KEY" },
						zones: [CUSTOMER_ZONE],
					},
				}),
			),
		);
		expect(env).toContainEqual({
			path: "$.settings.apiKey",
			rule: "a tenant's provider credentials must be given inline; { env } refers to this server's environment",
		});
		const unknownType = await violations(
			await bind(tenantId, "dns", customerDns({ type: "route53" })),
		);
		expect(unknownType[0]).toMatchObject({ path: "$.type" });
		const http = await violations(
			await bind(
				tenantId,
				"dns",
				customerDns({
					settings: {
						apiUrl: "http://dns.customer.example:8081",
						apiKey: "k",
						zones: [CUSTOMER_ZONE],
					},
				}),
			),
		);
		expect(http).toEqual([
			{
				path: "$.settings.apiUrl",
				rule: "must be an https:// URL (http:// is allowed only for loopback addresses)",
			},
		]);
		const eu = t.platform.store.region("eu-central").db;
		expect(
			await eu.select().from(providerBindings).where(eq(providerBindings.tenantId, tenantId)),
		).toEqual([]);
	});
});
