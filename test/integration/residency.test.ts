import { createClient } from "@libsql/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerNode } from "../../functions/services/nodes";
import { runDueJobs } from "../../functions/services/provisioning/run-jobs";
import { createTenant } from "../../functions/services/tenants";
import { createTestPlatform, type TestPlatform } from "../helpers/test-platform";

let t: TestPlatform;

beforeAll(async () => {
	t = await createTestPlatform();
});
afterAll(() => t.close());

/** Every (table, column) in a database file whose text mentions `needle`, read with a fresh client. */
async function mentions(file: string, needle: string): Promise<string[]> {
	const client = createClient({ url: `file:${file}` });
	try {
		const tables = await client.execute(
			"select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and name not like '__drizzle%'",
		);
		const found: string[] = [];
		for (const { name } of tables.rows) {
			const rows = await client.execute(`select * from "${String(name)}"`);
			for (const row of rows.rows) {
				for (const column of rows.columns) {
					if (String(row[column] ?? "").includes(needle)) found.push(`${String(name)}.${column}`);
				}
			}
		}
		return [...new Set(found)].sort();
	} finally {
		client.close();
	}
}

describe("residency of rows", () => {
	it("writes an EU tenant's rows only to the EU database, and only its hostname index to the catalog", async () => {
		const ctx = { platform: t.platform, actor: "test" };
		for (const [regionId, address] of [
			["eu-central", "192.0.2.1"],
			["us-east", "198.51.100.1"],
		] as const) {
			await registerNode({
				ctx,
				input: { regionId, name: `${regionId}-1`, address, instanceUrls: ["http://127.0.0.1:9"] },
			});
		}
		const eu = await createTenant({
			ctx,
			input: {
				id: "ten_eu_resident",
				slug: "eu-resident",
				homeRegion: "eu-central",
				profile: "sovereign",
			},
		});
		await createTenant({
			ctx,
			input: { id: "ten_us_resident", slug: "us-resident", homeRegion: "us-east" },
		});
		const outcomes = await runDueJobs(t.platform, { holder: "test" });
		expect(outcomes.map((o) => [o.id.split(".")[1], o.state])).toEqual([
			["eu-central", "succeeded"],
			["us-east", "succeeded"],
		]);
		expect(eu.provisioning?.jobId).toMatch(/^job\.eu-central\./);

		const euFile = `${t.dir}/eu-central.db`;
		const usFile = `${t.dir}/us-east.db`;
		const catalogFile = `${t.dir}/catalog.db`;

		// The EU tenant: tenant row, certificate, route and audit chain in eu-central...
		expect(await mentions(euFile, "ten_eu_resident")).toEqual([
			"audit_events.chain",
			"audit_events.subject",
			"audit_heads.chain",
			"certificates.tenant_id",
			"dns_records.tenant_id",
			"provisioning_jobs.tenant_id",
			"routes.tenant_id",
			"tenants.id",
		]);
		// ...nothing in us-east...
		expect(await mentions(usFile, "ten_eu_resident")).toEqual([]);
		expect(await mentions(usFile, "eu-resident")).toEqual([]);
		// ...and in the catalog only the hostname -> (tenant, region) index.
		expect(await mentions(catalogFile, "ten_eu_resident")).toEqual(["hostnames.tenant_id"]);
		expect(await mentions(catalogFile, "eu-resident")).toEqual(["hostnames.hostname"]);

		// The US tenant mirrors it.
		expect(await mentions(usFile, "ten_us_resident")).toContain("tenants.id");
		expect(await mentions(euFile, "ten_us_resident")).toEqual([]);
	});

	it("locates a tenant's home region from the catalog's hostname index", async () => {
		const region = await t.platform.store.locateTenant("ten_eu_resident");
		expect(region?.id).toBe("eu-central");
		expect(await t.platform.store.locateTenant("ten_missing")).toBeUndefined();
	});
});
