import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { certificates, routes } from "../../db/schema/region";
import { createApp } from "../../functions/api/app";
import { createApiToken } from "../../functions/services/api-tokens";
import { registerNode } from "../../functions/services/nodes";
import { runDueJobs } from "../../functions/services/provisioning/run-jobs";
import { FakeClock } from "../helpers/fake-clock";
import { createTestPlatform, type TestPlatform } from "../helpers/test-platform";

const clock = new FakeClock();
let t: TestPlatform;
let app: ReturnType<typeof createApp>;
let token: string;

beforeAll(async () => {
	t = await createTestPlatform({ clock });
	app = createApp(t.platform);
	token = (await createApiToken(t.platform.store, clock, { scopes: ["tenants:write"] })).token;
	await registerNode({
		ctx: { platform: t.platform, actor: "test" },
		input: {
			regionId: "eu-central",
			name: "eu-1",
			address: "192.0.2.30",
			instanceUrls: ["http://127.0.0.1:9"],
		},
	});
});
afterAll(() => t.close());

const headers = () => ({ "content-type": "application/json", authorization: `Bearer ${token}` });

/** A certificate for `hostname` with a complete chain (leaf + self-signed root), from a real CA. */
function issue(hostname: string) {
	return t.platform.providers
		.get("issuer", "internal-ca")
		.issue({ tenantId: "x", regionId: "us-east", hostnames: [hostname] });
}

describe("bring your own certificate", () => {
	let tenantId: string;

	it("a byo tenant's job waits for the customer's certificate instead of issuing one", async () => {
		const res = await app.request("/v1/tenants", {
			method: "POST",
			headers: headers(),
			body: JSON.stringify({ slug: "byo-shop", homeRegion: "eu-central", profile: "byo" }),
		});
		expect(res.status).toBe(201);
		tenantId = ((await res.json()) as { tenant: { id: string } }).tenant.id;
		const [outcome] = await runDueJobs(t.platform, { holder: "test", random: () => 0 });
		expect(outcome).toMatchObject({ state: "pending", step: "certificate" });
		expect(outcome?.lastError).toBe(
			`waiting for the customer's certificate for byo-shop.localhost: upload it with PUT /v1/tenants/${tenantId}/certificate`,
		);
	});

	it("refuses a key that does not match, a name it does not cover, and another tenant's hostname", async () => {
		const a = await issue("byo-shop.localhost");
		const b = await issue("byo-shop.localhost");
		const put = (body: unknown) =>
			app.request(`/v1/tenants/${tenantId}/certificate`, {
				method: "PUT",
				headers: headers(),
				body: JSON.stringify(body),
			});
		const mismatch = await put({ chainPem: a.chainPem, privateKeyPem: b.privateKeyPem });
		expect(mismatch.status).toBe(400);
		const body = (await mismatch.json()) as {
			error: { violations: Array<{ path: string; rule: string }> };
		};
		expect(body.error.violations.map((v) => v.path)).toEqual(["$.privateKeyPem"]);
		expect(body.error.violations[0]?.rule).toMatch(
			/^does not match the public key of the certificate/,
		);

		const other = await issue("elsewhere.localhost");
		const wrongName = await put({ chainPem: other.chainPem, privateKeyPem: other.privateKeyPem });
		expect(wrongName.status).toBe(400);
		expect(JSON.stringify(await wrongName.json())).toContain("byo-shop.localhost");

		const foreign = await put({
			chainPem: a.chainPem,
			privateKeyPem: a.privateKeyPem,
			hostname: "someone-else.localhost",
		});
		expect(foreign.status).toBe(400);
		expect(((await foreign.json()) as { error: { message: string } }).error.message).toBe(
			`$.hostname: someone-else.localhost is not a hostname of tenant ${tenantId}`,
		);
		const eu = t.platform.store.region("eu-central").db;
		expect(await eu.select().from(certificates).where(eq(certificates.tenantId, tenantId))).toEqual(
			[],
		);
	});

	it("stores a valid certificate sealed, and the job then routes it", async () => {
		const good = await issue("byo-shop.localhost");
		const res = await app.request(`/v1/tenants/${tenantId}/certificate`, {
			method: "PUT",
			headers: headers(),
			body: JSON.stringify({ chainPem: good.chainPem, privateKeyPem: good.privateKeyPem }),
		});
		expect(res.status).toBe(201);
		const { certificate } = (await res.json()) as { certificate: { certificateId: string } };
		const eu = t.platform.store.region("eu-central").db;
		const [row] = await eu
			.select()
			.from(certificates)
			.where(eq(certificates.id, certificate.certificateId));
		expect(row).toMatchObject({ issuer: "byo", status: "active", serial: good.serial });
		expect(row?.privateKeyCiphertext).not.toContain("PRIVATE KEY");

		clock.advance(10_000);
		const [outcome] = await runDueJobs(t.platform, { holder: "test" });
		expect(outcome).toMatchObject({ state: "succeeded", step: "done" });
		const [route] = await eu.select().from(routes).where(eq(routes.tenantId, tenantId));
		expect(route?.certificateId).toBe(certificate.certificateId);
	});
});
