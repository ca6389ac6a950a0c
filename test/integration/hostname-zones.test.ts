import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostnames } from "../../db/schema/catalog";
import { tenants } from "../../db/schema/region";
import { AppError } from "../../functions/errors";
import { createTenant } from "../../functions/services/tenants";
import { createTestPlatform, type TestPlatform } from "../helpers/test-platform";

let t: TestPlatform;

beforeAll(async () => {
	t = await createTestPlatform({
		edit: (doc) => {
			doc.providers = {
				...doc.providers,
				pdns: {
					kind: "dns",
					type: "powerdns",
					settings: {
						apiUrl: "http://127.0.0.1:9",
						apiKey: "unused-in-this-test",
						zones: ["tenants.example.net"],
					},
					capabilities: { jurisdiction: "EU" },
				},
			};
			doc.profiles.standard = {
				providers: {
					dns: "localhost-dns",
					issuer: "internal-ca",
					storage: "regional-store",
					relay: "direct",
				},
				regions: { "eu-central": { dns: "pdns" } },
			};
		},
	});
});
afterAll(() => t.close());

describe("tenant hostnames and DNS zones", () => {
	it("refuses a tenant whose hostname lies outside its DNS provider's zones, writing nothing", async () => {
		const attempt = createTenant({
			ctx: { platform: t.platform, actor: "test" },
			input: { slug: "acme", homeRegion: "eu-central" },
		});
		await expect(attempt).rejects.toThrow(AppError);
		await expect(attempt).rejects.toThrow(
			'$.slug: acme.localhost lies outside the zones served by dns provider "pdns" (tenants.example.net)',
		);
		expect(await t.platform.store.catalog.select().from(hostnames)).toEqual([]);
		expect(await t.platform.store.region("eu-central").db.select().from(tenants)).toEqual([]);
	});

	it("accepts the same tenant in a region whose DNS provider serves any name", async () => {
		const tenant = await createTenant({
			ctx: { platform: t.platform, actor: "test" },
			input: { slug: "acme", homeRegion: "us-east" },
		});
		expect(tenant.hostnames).toEqual([]);
		expect(tenant.homeRegion).toBe("us-east");
	});
});
