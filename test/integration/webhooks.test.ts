import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostnames } from "../../db/schema/catalog";
import {
	certificates,
	dnsRecords,
	provisioningJobs,
	routes,
	tenants,
	webhookEvents,
} from "../../db/schema/region";
import { createApp } from "../../functions/api/app";
import { verifyAuditChains } from "../../functions/audit/verify-audit";
import { createApiToken } from "../../functions/services/api-tokens";
import { registerNode } from "../../functions/services/nodes";
import { deliverDueNotifications } from "../../functions/services/provisioning/deliver-notifications";
import { runDueJobs } from "../../functions/services/provisioning/run-jobs";
import { signPayload, verifySignature } from "../../functions/webhooks/signature";
import { FakeClock } from "../helpers/fake-clock";
import { createTestPlatform, type TestPlatform } from "../helpers/test-platform";

const SECRET_A = "whsec_platform_a_0123456789abcdef0123456789";
const SECRET_A_NEXT = "whsec_platform_a_rotated_fedcba9876543210fe";
const SECRET_B = "whsec_platform_b_0123456789abcdef0123456789";

const clock = new FakeClock();
const txt = new Map<string, string[]>();
let t: TestPlatform;
let app: ReturnType<typeof createApp>;
let readToken: string;
let queued = 0;

/** The platform's side: a real HTTP receiver for Castellan's signed notifications. */
const received: Array<{ signature: string; body: string }> = [];
let receiverFails = 3;
const receiver = createServer((req, res) => {
	let body = "";
	req.on("data", (c) => {
		body += c;
	});
	req.on("end", () => {
		received.push({ signature: String(req.headers["castellan-signature"]), body });
		res.statusCode = receiverFails-- > 0 ? 500 : 204;
		res.end();
	});
});

beforeAll(async () => {
	await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
	const receiverPort = (receiver.address() as AddressInfo).port;
	t = await createTestPlatform({
		clock,
		env: { PLATFORM_A_SECRET: SECRET_A },
		resolver: { cname: async () => [], txt: async (name) => txt.get(name) ?? [] },
		edit: (doc) => {
			doc.webhooks = {
				platforms: [
					{
						id: "platform-a",
						secrets: [{ env: "PLATFORM_A_SECRET" }, SECRET_A_NEXT],
						notifyUrl: `http://127.0.0.1:${receiverPort}/hooks`,
					},
					{ id: "platform-b", secrets: [SECRET_B] },
				],
			};
		},
	});
	app = createApp(t.platform, { jobsQueued: () => queued++ });
	readToken = (await createApiToken(t.platform.store, clock, { scopes: ["read"] })).token;
	const ctx = { platform: t.platform, actor: "test" };
	await registerNode({
		ctx,
		input: {
			regionId: "eu-central",
			name: "eu-1",
			address: "192.0.2.10",
			instanceUrls: ["http://127.0.0.1:9"],
		},
	});
	await registerNode({
		ctx,
		input: {
			regionId: "us-east",
			name: "us-1",
			address: "198.51.100.10",
			instanceUrls: ["http://127.0.0.1:9"],
		},
	});
});
afterAll(() => {
	t.close();
	receiver.close();
});

async function send(
	event: unknown,
	opts: { secret?: string; at?: number; header?: string; raw?: string } = {},
) {
	const body = opts.raw ?? JSON.stringify(event);
	const at = opts.at ?? Math.floor(clock.now().getTime() / 1000);
	const header = opts.header ?? (await signPayload(opts.secret ?? SECRET_A, body, at));
	return app.request("/v1/webhooks/provisioning", {
		method: "POST",
		headers: { "content-type": "application/json", "castellan-signature": header },
		body,
	});
}

const created = (id: string, tenantId: string, extra: Record<string, unknown> = {}) => ({
	id,
	type: "tenant.created",
	data: {
		tenantId,
		slug: tenantId.replace(/_/g, "-"),
		profile: "sovereign",
		homeRegion: "eu-central",
		...extra,
	},
});

async function countRows() {
	const eu = t.platform.store.region("eu-central").db;
	return {
		tenants: (await eu.select().from(tenants)).length,
		jobs: (await eu.select().from(provisioningJobs)).length,
		events: (await eu.select().from(webhookEvents)).length,
		catalog: (await t.platform.store.catalog.select().from(hostnames)).length,
	};
}

async function errorOf(res: Response) {
	return ((await res.json()) as { error: { code: string; message: string; violations?: unknown } })
		.error;
}

describe("webhook authentication", () => {
	it("refuses a missing, malformed, wrong or stale signature with 401 and writes nothing", async () => {
		const before = await countRows();
		const event = created("evt_auth", "ten_auth");
		const body = JSON.stringify(event);
		const now = Math.floor(clock.now().getTime() / 1000);
		const cases: Array<[string, Response]> = [
			["missing", await app.request("/v1/webhooks/provisioning", { method: "POST", body })],
			["malformed", await send(event, { header: "v1=abc,t=now" })],
			["wrong secret", await send(event, { secret: "whsec_someone_else_0123456789abcdef01234" })],
			["stale", await send(event, { at: now - 301 })],
			["from the future", await send(event, { at: now + 301 })],
			[
				"body changed after signing",
				await send(event, { header: await signPayload(SECRET_A, `${body} `, now) }),
			],
		];
		for (const [name, res] of cases) {
			expect(res.status, name).toBe(401);
			expect((await errorOf(res)).code, name).toBe("unauthorized");
		}
		expect(await countRows()).toEqual(before);
	});

	it("accepts a timestamp just inside the window, and either secret during rotation", async () => {
		const now = Math.floor(clock.now().getTime() / 1000);
		const r1 = await send(created("evt_rot_1", "ten_rot_one"), { at: now - 299 });
		expect(r1.status).toBe(202);
		expect(
			(await send(created("evt_rot_2", "ten_rot_two"), { secret: SECRET_A_NEXT })).status,
		).toBe(202);
	});

	it("refuses a body over 64 KiB with 413 before anything else", async () => {
		const raw = JSON.stringify({ ...created("evt_big", "ten_big"), pad: "x".repeat(65 * 1024) });
		const res = await send(undefined, { raw, header: "t=1,v1=00" });
		expect(res.status).toBe(413);
	});

	it("refuses invalid JSON, unknown event types and bad fields with 400 naming the field", async () => {
		const before = await countRows();
		const notJson = await send(undefined, { raw: "{nope" });
		expect(notJson.status).toBe(400);
		expect((await errorOf(notJson)).message).toMatch(/not valid JSON/);
		const unknownType = await send({ id: "evt_x", type: "tenant.exploded", data: {} });
		expect(unknownType.status).toBe(400);
		expect((await errorOf(unknownType)).message).toMatch(/^\$\.type: /);
		const badSlug = await send(created("evt_y", "ten_bad_slug", { slug: "Not_A_Label" }));
		expect(badSlug.status).toBe(400);
		expect((await errorOf(badSlug)).message).toMatch(/^\$\.slug: must be a DNS label/);
		const badRegion = await send(created("evt_z", "ten_bad_region", { homeRegion: "mars" }));
		expect(badRegion.status).toBe(400);
		expect((await errorOf(badRegion)).message).toBe('$.data.homeRegion: unknown region "mars"');
		const leaky = await send(
			created("evt_w", "ten_leaky", { allowedRegions: ["eu-central", "us-east"] }),
		);
		expect(leaky.status).toBe(400);
		expect((await errorOf(leaky)).message).toMatch(
			/\$\.allowedRegions\[1\]: sovereign tenant homed in eu-central/,
		);
		expect(await countRows()).toEqual(before);
	});
});

describe("provisioning through webhooks", () => {
	let jobId: string;

	it("answers tenant.created with 202 and a job id, and a repeat with the same answer and no new work", async () => {
		queued = 0;
		const res = await send(created("evt_acme_1", "ten_acme"));
		expect(res.status).toBe(202);
		const answer = (await res.json()) as { jobId: string; tenantId: string; eventId: string };
		expect(answer).toMatchObject({
			eventId: "evt_acme_1",
			tenantId: "ten_acme",
			status: "accepted",
		});
		expect(answer.jobId).toMatch(/^job\.eu-central\.[0-9a-f]{24}$/);
		expect(queued).toBe(1);
		jobId = answer.jobId;
		const before = await countRows();
		const again = await send(created("evt_acme_1", "ten_acme"));
		expect(again.status).toBe(202);
		expect(await again.json()).toEqual(answer);
		expect(await countRows()).toEqual(before);
	});

	it("refuses an event id reused for a different body", async () => {
		const res = await send(created("evt_acme_1", "ten_acme", { slug: "other" }));
		expect(res.status).toBe(409);
		expect((await errorOf(res)).message).toMatch(/already used for a different event/);
	});

	it("runs the job to the end: DNS record, certificate, route, notification, all audited", async () => {
		const outcomes = await runDueJobs(t.platform, { holder: "runner-1" });
		expect(outcomes.find((o) => o.id === jobId)).toEqual({
			id: jobId,
			state: "succeeded",
			step: "done",
			lastError: null,
		});
		const job = await app.request(`/v1/jobs/${jobId}`, {
			headers: { authorization: `Bearer ${readToken}` },
		});
		expect(job.status).toBe(200);
		expect(((await job.json()) as { job: { state: string; step: string } }).job).toMatchObject({
			state: "succeeded",
			step: "done",
		});

		const eu = t.platform.store.region("eu-central").db;
		const records = await eu.select().from(dnsRecords).where(eq(dnsRecords.tenantId, "ten_acme"));
		expect(records.map((r) => [r.name, r.type, r.values])).toEqual([
			["ten-acme.localhost", "A", ["192.0.2.10"]],
		]);
		const [route] = await eu.select().from(routes).where(eq(routes.tenantId, "ten_acme"));
		expect(route?.hostname).toBe("ten-acme.localhost");
		const [cert] = await eu
			.select()
			.from(certificates)
			.where(eq(certificates.tenantId, "ten_acme"));
		expect(cert?.status).toBe("active");
		expect(cert?.privateKeyCiphertext).not.toContain("PRIVATE KEY");
		expect(route?.certificateId).toBe(cert?.id);

		const tenant = await app.request("/v1/tenants/ten_acme", {
			headers: { authorization: `Bearer ${readToken}` },
		});
		const view = (
			(await tenant.json()) as { tenant: { status: string; provisioning: { jobId: string } } }
		).tenant;
		expect(view.status).toBe("active");
		expect(view.provisioning.jobId).toBe(jobId);
		expect((await verifyAuditChains(eu)).ok).toBe(true);
	});

	it("tells the platform the endpoint is live, signed, retrying after a failed delivery", async () => {
		const first = await deliverDueNotifications(t.platform, { random: () => 1 });
		expect(first).toEqual({ delivered: 0, failed: 3 });
		expect(await deliverDueNotifications(t.platform)).toEqual({ delivered: 0, failed: 0 });
		clock.advance(2_000);
		receiverFails = 0;
		expect(await deliverDueNotifications(t.platform)).toEqual({ delivered: 3, failed: 0 });
		const acme = received.filter((r) => r.body.includes("ten_acme")).at(-1)!;
		const check = await verifySignature({
			header: acme.signature,
			body: acme.body,
			secrets: [{ owner: "a", secret: SECRET_A }],
			now: clock.now(),
			toleranceSeconds: 300,
		});
		expect(check.ok).toBe(true);
		expect(JSON.parse(acme.body)).toMatchObject({
			type: "endpoint.live",
			data: {
				tenantId: "ten_acme",
				hostname: "ten-acme.localhost",
				url: "https://ten-acme.localhost/",
				jobId,
			},
		});
		expect(await deliverDueNotifications(t.platform)).toEqual({ delivered: 0, failed: 0 });
	});

	it("hides another platform's tenant: 404, nothing written", async () => {
		const before = await countRows();
		const res = await send(
			{ id: "evt_b_1", type: "tenant.deleted", data: { tenantId: "ten_acme" } },
			{ secret: SECRET_B },
		);
		expect(res.status).toBe(404);
		expect(await countRows()).toEqual(before);
		const [row] = await t.platform.store
			.region("eu-central")
			.db.select()
			.from(tenants)
			.where(eq(tenants.id, "ten_acme"));
		expect(row?.status).toBe("active");
	});

	it("re-validates tenant.updated against policy", async () => {
		const res = await send({
			id: "evt_acme_2",
			type: "tenant.updated",
			data: { tenantId: "ten_acme", allowedRegions: ["eu-central", "us-east"] },
		});
		expect(res.status).toBe(400);
		expect((await errorOf(res)).message).toMatch(/may not be served from us-east/);
	});

	it("backs off a failing job with persisted attempts, and does not run it before its time", async () => {
		// A standard tenant allowed only in us-east, whose only node is marked unhealthy: no target.
		const res = await send({
			id: "evt_stuck",
			type: "tenant.created",
			data: { tenantId: "ten_stuck", slug: "stuck", profile: "standard", homeRegion: "us-east" },
		});
		const { jobId: stuck } = (await res.json()) as { jobId: string };
		const us = t.platform.store.region("us-east").db;
		const { nodes } = await import("../../db/schema/region");
		await us.update(nodes).set({ state: "unhealthy" });
		const first = await runDueJobs(t.platform, { holder: "runner-1", random: () => 1 });
		expect(first.find((o) => o.id === stuck)).toMatchObject({ state: "pending", step: "dns" });
		const [row] = await us.select().from(provisioningJobs).where(eq(provisioningJobs.id, stuck));
		expect(row?.attempts).toBe(1);
		expect(row?.lastError).toMatch(
			/no eligible data-plane node inside the residency of tenant ten_stuck/,
		);
		expect(row?.nextAttemptAt?.getTime()).toBe(clock.now().getTime() + 2_000);
		expect((await runDueJobs(t.platform, { holder: "runner-1" })).map((o) => o.id)).not.toContain(
			stuck,
		);
		await us.update(nodes).set({ state: "healthy" });
		clock.advance(2_000);
		const later = await runDueJobs(t.platform, { holder: "runner-1" });
		expect(later.find((o) => o.id === stuck)).toMatchObject({ state: "succeeded" });
	});

	it("verifies a custom domain by TXT before issuing for it", async () => {
		const res = await send({
			id: "evt_dom_1",
			type: "domain.added",
			data: { tenantId: "ten_acme", hostname: "shop.acme.example", verification: "txt" },
		});
		expect(res.status).toBe(202);
		const { jobId: domainJob } = (await res.json()) as { jobId: string };
		const first = await runDueJobs(t.platform, { holder: "runner-1", random: () => 0 });
		expect(first.find((o) => o.id === domainJob)).toMatchObject({
			state: "pending",
			step: "verify",
		});
		const eu = t.platform.store.region("eu-central").db;
		expect(await eu.select().from(routes).where(eq(routes.hostname, "shop.acme.example"))).toEqual(
			[],
		);
		const { customDomains } = await import("../../db/schema/region");
		const [domain] = await eu
			.select()
			.from(customDomains)
			.where(eq(customDomains.hostname, "shop.acme.example"));
		txt.set("_castellan-challenge.shop.acme.example", [domain!.token]);
		clock.advance(60_000);
		const second = await runDueJobs(t.platform, { holder: "runner-1" });
		expect(second.find((o) => o.id === domainJob)).toMatchObject({ state: "succeeded" });
		expect(
			(await eu.select().from(routes).where(eq(routes.hostname, "shop.acme.example"))).length,
		).toBe(1);
		const [cert] = await eu
			.select()
			.from(certificates)
			.where(eq(certificates.hostname, "shop.acme.example"));
		expect(cert?.status).toBe("active");
	});

	it("refuses a custom domain inside the base domain or owned by another tenant", async () => {
		const inside = await send({
			id: "evt_dom_2",
			type: "domain.added",
			data: { tenantId: "ten_acme", hostname: "x.localhost" },
		});
		expect(inside.status).toBe(400);
		const taken = await send({
			id: "evt_dom_3",
			type: "domain.added",
			data: { tenantId: "ten_rot_one", hostname: "shop.acme.example" },
		});
		expect(taken.status).toBe(409);
	});

	it("tenant.deleted stops serving at once, then removes DNS, keys, routes and hostnames, keeping the audit chain", async () => {
		const res = await send({
			id: "evt_acme_del",
			type: "tenant.deleted",
			data: { tenantId: "ten_acme" },
		});
		expect(res.status).toBe(202);
		const eu = t.platform.store.region("eu-central").db;
		const [row] = await eu.select().from(tenants).where(eq(tenants.id, "ten_acme"));
		expect(row?.status).toBe("deleted");
		await runDueJobs(t.platform, { holder: "runner-1" });
		expect(await eu.select().from(routes).where(eq(routes.tenantId, "ten_acme"))).toEqual([]);
		expect(await eu.select().from(dnsRecords).where(eq(dnsRecords.tenantId, "ten_acme"))).toEqual(
			[],
		);
		const certs = await eu.select().from(certificates).where(eq(certificates.tenantId, "ten_acme"));
		expect(certs.length).toBeGreaterThan(0);
		expect(certs.every((c) => c.status === "revoked" && c.privateKeyCiphertext === "")).toBe(true);
		expect(
			await t.platform.store.catalog
				.select()
				.from(hostnames)
				.where(eq(hostnames.tenantId, "ten_acme")),
		).toEqual([]);
		const audit = await verifyAuditChains(eu, { chain: "ten_acme" });
		expect(audit).toMatchObject({ ok: true });
		expect(audit.events).toBeGreaterThan(10);
	});
});
