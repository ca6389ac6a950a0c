import { createClient, type InArgs } from "@libsql/client";
import { and, eq } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { readRouteVersion } from "../../db/route-version";
import { certificates, routes, tenants } from "../../db/schema/region";
import { verifyAuditChains } from "../../functions/audit/verify-audit";
import {
	certificatesInScope,
	renewDueCertificates,
} from "../../functions/jobs/renew-due-certificates";
import { oneThirdRemainingAt } from "../../functions/jobs/renewal-policy";
import type { LogLevel } from "../../functions/runtime";
import { createTenant } from "../../functions/services/tenants";
import { uploadCertificate } from "../../functions/services/upload-certificate";
import {
	activeCertificates,
	addNode,
	addTenant,
	auditActions,
	createJobsFixture,
	DAY_MS,
	EU,
	type JobsFixture,
} from "./helpers/jobs-fixture";
import { scriptedIssuer } from "./helpers/scripted-issuer";

const MIN = 60_000;
const HOUR = 60 * MIN;
let fx: JobsFixture | undefined;
afterEach(() => fx?.close());

async function setup(options: { ari?: boolean } = {}) {
	fx = await createJobsFixture();
	const issuer = scriptedIssuer(fx.realIssuer("internal-ca"), options);
	fx.overrideIssuer("internal-ca", issuer);
	await addNode(fx.platform, { region: EU, name: "eu-a", address: "192.0.2.10" });
	await addTenant(fx.platform, { id: "ten_a", slug: "a", home: EU });
	issuer.calls.length = 0;
	const [cert] = await activeCertificates(fx.platform, EU, "ten_a");
	return { fx, platform: fx.platform, clock: fx.clock, issuer, cert: cert! };
}

const sweep = (
	fixture: JobsFixture,
	extra: Parameters<typeof renewDueCertificates>[1] | object = {},
) => renewDueCertificates(fixture.platform, { holder: "r1", random: () => 1, ...extra });

async function routeCertificate(fixture: JobsFixture, tenantId: string) {
	const [route] = await fixture.platform.store
		.region(EU)
		.db.select()
		.from(routes)
		.where(eq(routes.tenantId, tenantId));
	return route?.certificateId;
}

describe("renewal window", () => {
	it("renews when a third of the lifetime remains, not a millisecond before, and swaps it into the edge", async () => {
		const { fx, platform, clock, issuer, cert } = await setup();
		const due = oneThirdRemainingAt(cert);
		// 90-day internal CA certificate: due 60 days (and the 5-minute back-dating) after issuance.
		expect(Math.round((due.getTime() - cert.notBefore.getTime()) / DAY_MS)).toBe(60);

		clock.set(new Date(due.getTime() - 1));
		expect((await sweep(fx)).outcomes).toEqual([]);
		expect(issuer.calls).toEqual([]);

		const version = await readRouteVersion(platform.store.region(EU).db);
		clock.set(due);
		const result = await sweep(fx);
		expect(result).toMatchObject({
			renewed: 1,
			failed: 0,
			metrics: { certificate_renewals_total: 1 },
		});
		const renewed = result.outcomes[0]!;
		expect(renewed).toMatchObject({
			certificateId: cert.id,
			result: "renewed",
			reason: "one-third-lifetime",
		});

		const [fresh] = await activeCertificates(platform, EU, "ten_a");
		expect(fresh?.id).toBe(renewed.newCertificateId);
		expect(fresh!.notAfter.getTime()).toBeGreaterThan(cert.notAfter.getTime());
		const [old] = await platform.store
			.region(EU)
			.db.select()
			.from(certificates)
			.where(eq(certificates.id, cert.id));
		expect(old?.status).toBe("superseded");
		expect(await routeCertificate(fx, "ten_a")).toBe(fresh?.id);
		expect(await readRouteVersion(platform.store.region(EU).db)).toBe(version + 1);
		const event = (await auditActions(platform, EU, "ten_a")).find(
			(e) => e.action === "certificate.renewed",
		);
		expect(event).toMatchObject({ actor: "system:renewal", subject: "a.localhost" });
		expect(event?.data).toMatchObject({
			certificateId: fresh?.id,
			previous: cert.id,
			issuer: "internal-ca",
		});
		expect((await verifyAuditChains(platform.store.region(EU).db)).ok).toBe(true);

		// The new certificate is not due: the next sweep finds nothing.
		expect((await sweep(fx)).outcomes).toEqual([]);
		expect(issuer.calls).toHaveLength(1);
	});

	it("reads only what is due, through the (status, renewal_due_at) index", async () => {
		const { fx, platform, clock, cert } = await setup();
		clock.advance(40 * DAY_MS);
		await addTenant(platform, { id: "ten_b", slug: "b", home: EU });
		clock.set(oneThirdRemainingAt(cert));
		const result = await sweep(fx);
		expect(result.outcomes.map((o) => [o.tenantId, o.result])).toEqual([["ten_a", "renewed"]]);

		const query = certificatesInScope(
			platform.store.region(EU).db,
			{ kind: "due" },
			clock.now(),
		).toSQL();
		const client = createClient({ url: `file:${fx.t.dir}/${EU}.db` });
		const plan = await client
			.execute({ sql: `explain query plan ${query.sql}`, args: query.params as InArgs })
			.finally(() => client.close());
		const detail = plan.rows.map((r) => String(r.detail)).join("\n");
		expect(detail).toMatch(
			/USING INDEX certificates_renewal_due_idx \(status=\? AND renewal_due_at<\?\)/,
		);
		expect(detail).not.toMatch(/SCAN certificates/);
	});
});

describe("renewal failures", () => {
	it("keeps the old certificate serving and backs off exponentially, persisted and capped", async () => {
		const { fx, platform, clock, issuer, cert } = await setup();
		issuer.failing = true;
		clock.set(oneThirdRemainingAt(cert));

		const waits: number[] = [];
		for (let attempt = 1; attempt <= 9; attempt++) {
			const result = await sweep(fx);
			expect(result.outcomes).toEqual([
				expect.objectContaining({ certificateId: cert.id, result: "failed", alert: false }),
			]);
			const [row] = await activeCertificates(platform, EU, "ten_a");
			// The old certificate is still the active one, and the route still names it.
			expect(row?.id).toBe(cert.id);
			expect(row).toMatchObject({ renewAttempts: attempt });
			expect(row?.lastRenewalError).toMatch(/unavailable \(HTTP 503\)/);
			const wait = row!.nextRenewalAt!.getTime() - clock.now().getTime();
			waits.push(wait);
			// Not a call before the backoff runs out...
			clock.advance(wait - 1);
			expect((await sweep(fx)).outcomes).toEqual([]);
			clock.advance(1);
		}
		expect(await routeCertificate(fx, "ten_a")).toBe(cert.id);
		expect(issuer.calls).toHaveLength(9);
		// 5 min doubling (random() = 1, no jitter), capped at 6 h.
		expect(waits.map((w) => w / MIN)).toEqual([5, 10, 20, 40, 80, 160, 320, 360, 360]);

		issuer.failing = false;
		const healed = await sweep(fx);
		expect(healed.renewed).toBe(1);
		const [fresh] = await activeCertificates(platform, EU, "ten_a");
		expect(fresh).toMatchObject({ renewAttempts: 0, nextRenewalAt: null, lastRenewalError: null });
		expect(await routeCertificate(fx, "ten_a")).toBe(fresh?.id);
	});

	it("jitters the backoff so runners that failed together do not retry together", async () => {
		const { fx, platform, clock, issuer, cert } = await setup();
		issuer.failing = true;
		clock.set(oneThirdRemainingAt(cert));
		await sweep(fx, { random: () => 0 });
		const [row] = await activeCertificates(platform, EU, "ten_a");
		expect(row!.nextRenewalAt!.getTime() - clock.now().getTime()).toBe(2.5 * MIN);
	});

	it("raises an alert (error log + metric) when a certificate within 7 days of expiry still fails", async () => {
		const { fx, platform, clock, issuer, cert } = await setup();
		const logs: Array<{ level: LogLevel; message: string; fields?: Record<string, unknown> }> = [];
		platform.logger = { log: (level, message, fields) => logs.push({ level, message, fields }) };
		issuer.failing = true;

		clock.set(new Date(cert.notAfter.getTime() - 8 * DAY_MS));
		const early = await sweep(fx);
		expect(early).toMatchObject({ failed: 1, alerts: 0 });
		expect(logs.at(-1)).toMatchObject({
			level: "warn",
			message: "certificate renewal failed; will retry",
		});

		clock.set(new Date(cert.notAfter.getTime() - 6 * DAY_MS));
		const late = await sweep(fx);
		expect(late).toMatchObject({
			failed: 1,
			alerts: 1,
			metrics: { certificate_expiry_alerts_total: 1 },
		});
		expect(logs.at(-1)).toMatchObject({
			level: "error",
			message: "certificate expires within 7 days and its renewal is failing",
			fields: { alert: "certificate_expiry", certificate: cert.id, tenant: "ten_a", attempts: 2 },
		});
		// Near expiry the wait is capped at 1 h, whatever the attempt count.
		for (let i = 0; i < 8; i++) {
			clock.advance(HOUR);
			await sweep(fx);
		}
		const [row] = await activeCertificates(platform, EU, "ten_a");
		expect(row!.nextRenewalAt!.getTime() - clock.now().getTime()).toBeLessThanOrEqual(HOUR);
		expect(row?.id).toBe(cert.id);
	});

	it("does not renew the certificate of a deleted tenant, and stops looking at it every sweep", async () => {
		const { fx, platform, clock, issuer, cert } = await setup();
		await platform.store
			.region(EU)
			.db.update(tenants)
			.set({ status: "deleted" })
			.where(eq(tenants.id, "ten_a"));
		clock.set(oneThirdRemainingAt(cert));
		expect((await sweep(fx)).outcomes).toEqual([
			expect.objectContaining({ result: "skipped", reason: "tenant deleted" }),
		]);
		expect(issuer.calls).toEqual([]);
		expect((await sweep(fx)).outcomes).toEqual([]);
		clock.advance(DAY_MS);
		expect((await sweep(fx)).outcomes).toHaveLength(1);
	});
});

describe("certificates the customer brings (byo, no issuer)", () => {
	it("are never issued for; within 7 days of expiry they raise the alert, once a day", async () => {
		fx = await createJobsFixture();
		const { platform, clock } = fx;
		const logs: Array<{ level: LogLevel; message: string; fields?: Record<string, unknown> }> = [];
		platform.logger = { log: (level, message, fields) => logs.push({ level, message, fields }) };
		const issuer = scriptedIssuer(fx.realIssuer("internal-ca"));
		fx.overrideIssuer("internal-ca", issuer);
		const ctx = { platform, actor: "test" };
		await createTenant({
			ctx,
			input: { id: "ten_byo", slug: "byo", homeRegion: EU, profile: "byo" },
		});
		const brought = await fx
			.realIssuer("internal-ca")
			.issue({ tenantId: "ten_byo", regionId: EU, hostnames: ["byo.localhost"] });
		await uploadCertificate({
			ctx,
			input: {
				tenantId: "ten_byo",
				body: { chainPem: brought.chainPem, privateKeyPem: brought.privateKeyPem },
			},
		});
		const [cert] = await activeCertificates(platform, EU, "ten_byo");
		expect(cert?.issuer).toBe("byo");

		clock.set(oneThirdRemainingAt(cert!));
		expect((await sweep(fx)).outcomes).toEqual([
			expect.objectContaining({ result: "skipped", reason: "customer-managed" }),
		]);
		// Not looked at again until the alert zone.
		clock.set(new Date(cert!.notAfter.getTime() - 7 * DAY_MS - 1));
		expect((await sweep(fx)).outcomes).toEqual([]);
		clock.advance(1);
		const alerting = await sweep(fx);
		expect(alerting).toMatchObject({ failed: 1, alerts: 1 });
		expect(logs.at(-1)).toMatchObject({
			level: "error",
			fields: { alert: "certificate_expiry", tenant: "ten_byo" },
		});
		expect((await sweep(fx)).outcomes).toEqual([]);
		clock.advance(DAY_MS);
		expect((await sweep(fx)).alerts).toBe(1);
		expect(issuer.calls).toEqual([]);
	});
});

describe("ACME Renewal Information (a CA that offers it)", () => {
	it("waits for the CA's window, then renews inside it", async () => {
		const { fx, platform, clock, issuer, cert } = await setup({ ari: true });
		const due = oneThirdRemainingAt(cert);
		clock.set(due);
		issuer.window = {
			start: new Date(due.getTime() + 2 * DAY_MS),
			end: new Date(due.getTime() + 4 * DAY_MS),
			retryAfter: new Date(due.getTime() + 5 * DAY_MS),
		};
		const deferred = await sweep(fx, { random: () => 0.5 });
		expect(deferred.outcomes).toEqual([
			expect.objectContaining({
				result: "deferred",
				reason: "ari-window-later",
				nextAttemptAt: new Date(due.getTime() + 3 * DAY_MS),
			}),
		]);
		expect(issuer.calls).toEqual([]);
		expect(issuer.windowCalls[0]).toMatchObject({ serial: cert.serial, chainPem: cert.chainPem });

		clock.set(new Date(due.getTime() + 3 * DAY_MS - 1));
		expect((await sweep(fx)).outcomes).toEqual([]);
		clock.advance(1);
		const renewed = await sweep(fx);
		expect(renewed.outcomes).toEqual([
			expect.objectContaining({ result: "renewed", reason: "ari-window" }),
		]);
		// An ARI-capable CA's certificate asks again in 6 h, not at one third.
		const [fresh] = await activeCertificates(platform, EU, "ten_a");
		expect(fresh?.nextRenewalAt).toEqual(new Date(clock.now().getTime() + 6 * HOUR));
	});

	it("renews early when the CA's window opens early (a revocation incident), long before one third", async () => {
		const { fx, platform, clock, issuer, cert } = await setup({ ari: true });
		clock.set(oneThirdRemainingAt(cert));
		issuer.window = {
			start: new Date(clock.now().getTime() - HOUR),
			end: new Date(clock.now().getTime() + DAY_MS),
		};
		await sweep(fx);
		const [second] = await activeCertificates(platform, EU, "ten_a");

		clock.advance(6 * HOUR);
		issuer.window = {
			start: new Date(clock.now().getTime() - 1),
			end: new Date(clock.now().getTime() + HOUR),
		};
		const early = await sweep(fx);
		expect(early.outcomes).toEqual([
			expect.objectContaining({
				certificateId: second?.id,
				result: "renewed",
				reason: "ari-window",
			}),
		]);
		expect(clock.now().getTime()).toBeLessThan(oneThirdRemainingAt(second!).getTime());
	});

	it("falls back to one third when the CA cannot be asked, and asks again later before that", async () => {
		const { fx, platform, clock, issuer, cert } = await setup({ ari: true });
		const due = oneThirdRemainingAt(cert);
		issuer.window = new Error("GET https://ca.test/renewalInfo/x answered 500");
		clock.set(due);
		expect((await sweep(fx)).outcomes).toEqual([
			expect.objectContaining({ result: "renewed", reason: "one-third-lifetime" }),
		]);
		const [fresh] = await activeCertificates(platform, EU, "ten_a");
		clock.set(fresh!.nextRenewalAt!);
		const again = await sweep(fx);
		expect(again.outcomes).toEqual([
			expect.objectContaining({
				result: "deferred",
				reason: "ari-unavailable",
				nextAttemptAt: new Date(clock.now().getTime() + 6 * HOUR),
			}),
		]);
		issuer.window = undefined;
		clock.advance(6 * HOUR);
		expect((await sweep(fx)).outcomes).toEqual([
			expect.objectContaining({ result: "deferred", reason: "ari-no-window" }),
		]);
	});

	it("never lets a window hold a renewal back into the last 7 days", async () => {
		const { fx, clock, issuer, cert } = await setup({ ari: true });
		clock.set(new Date(cert.notAfter.getTime() - 6 * DAY_MS));
		issuer.window = { start: new Date(cert.notAfter.getTime() - DAY_MS), end: cert.notAfter };
		expect((await sweep(fx)).outcomes).toEqual([
			expect.objectContaining({ result: "renewed", reason: "expiry-near" }),
		]);
	});
});

describe("renewal by hand", () => {
	it("renews every active certificate with scope all, and one tenant's with scope tenant", async () => {
		const { fx, platform, issuer } = await setup({ ari: true });
		await addTenant(platform, { id: "ten_b", slug: "b", home: EU });
		issuer.calls.length = 0;
		const one = await sweep(fx, { scope: { kind: "tenant", tenantId: "ten_b" } });
		expect(one.outcomes.map((o) => [o.tenantId, o.result, o.reason])).toEqual([
			["ten_b", "renewed", "manual:tenant"],
		]);
		const all = await sweep(fx, { scope: { kind: "all" } });
		expect(all.outcomes.map((o) => o.tenantId).sort()).toEqual(["ten_a", "ten_b"]);
		expect(all.renewed).toBe(2);
		// Forced renewals do not ask the CA's window.
		expect(issuer.windowCalls).toEqual([]);
		const rows = await platform.store
			.region(EU)
			.db.select()
			.from(certificates)
			.where(and(eq(certificates.status, "active")));
		expect(rows).toHaveLength(2);
	});
});
