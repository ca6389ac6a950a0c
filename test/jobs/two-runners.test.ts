import { eq } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { certificates, leases } from "../../db/schema/region";
import { applyPendingFailovers } from "../../functions/jobs/apply-failover";
import { probeNodes } from "../../functions/jobs/probe-nodes";
import { renewDueCertificates } from "../../functions/jobs/renew-due-certificates";
import { oneThirdRemainingAt } from "../../functions/jobs/renewal-policy";
import { type PdnsServer, startPdnsServer } from "../helpers/pdns-server";
import type { HealthOrigin } from "./helpers/health-origins";
import {
	activeCertificates,
	addNode,
	addTenant,
	auditActions,
	createJobsFixture,
	EU,
	type JobsFixture,
	twoEuNodesTwoTenants,
	ZONE,
} from "./helpers/jobs-fixture";
import { scriptedIssuer } from "./helpers/scripted-issuer";
import { spawnRunner } from "./helpers/spawn-runner";

const TENANTS = Array.from({ length: 10 }, (_, i) => `ten_${i}`);
let fx: JobsFixture | undefined;
const origins: HealthOrigin[] = [];
afterEach(async () => {
	for (const o of origins.splice(0)) await o.kill();
	fx?.close();
});

async function dueFleet() {
	fx = await createJobsFixture();
	const issuer = scriptedIssuer(fx.realIssuer("internal-ca"), { delayMs: 20 });
	fx.overrideIssuer("internal-ca", issuer);
	await addNode(fx.platform, { region: EU, name: "eu-a", address: "192.0.2.10" });
	for (const [i, id] of TENANTS.entries())
		await addTenant(fx.platform, { id, slug: `t${i}`, home: EU });
	issuer.calls.length = 0;
	const [cert] = await activeCertificates(fx.platform, EU, TENANTS[0]!);
	fx.clock.set(oneThirdRemainingAt(cert!));
	return { f: fx, issuer };
}

async function expectEachRenewedOnce(f: JobsFixture) {
	for (const id of TENANTS) {
		const renewals = (await auditActions(f.platform, EU, id)).filter(
			(e) => e.action === "certificate.renewed",
		);
		expect(renewals, id).toHaveLength(1);
		const rows = await f.platform.store
			.region(EU)
			.db.select()
			.from(certificates)
			.where(eq(certificates.tenantId, id));
		expect(rows.map((r) => r.status).sort(), id).toEqual(["active", "superseded"]);
	}
}

describe("two runners on one store: each certificate is renewed exactly once", () => {
	it("in one process, racing sweeps: one CA call per certificate", async () => {
		const { f, issuer } = await dueFleet();
		const [r1, r2] = await Promise.all([
			renewDueCertificates(f.platform, { holder: "runner-1", concurrency: 4 }),
			renewDueCertificates(f.platform, { holder: "runner-2", concurrency: 4 }),
		]);
		expect(r1.renewed + r2.renewed).toBe(TENANTS.length);
		expect(r1.failed + r2.failed).toBe(0);
		// Whatever the interleaving, no certificate was issued twice.
		expect(issuer.calls).toHaveLength(TENANTS.length);
		expect(new Set(issuer.calls.map((c) => c.hostnames[0])).size).toBe(TENANTS.length);
		await expectEachRenewedOnce(f);
	});

	it("in two processes on the same database files, overlapping in time", async () => {
		const { f, issuer } = await dueFleet();
		issuer.delayMs = 200;
		const child = spawnRunner({
			dir: f.t.dir,
			job: "renew",
			holder: "process-2",
			now: f.clock.now(),
			issueDelayMs: 200,
		});
		// Start once the other process is at work (holds a certificate lease), so the two overlap.
		await vi.waitFor(
			async () => {
				const held = await f.platform.store.region(EU).db.select().from(leases);
				expect(held.some((l) => l.holder === "process-2")).toBe(true);
			},
			{ timeout: 20_000, interval: 20 },
		);
		const local = await renewDueCertificates(f.platform, { holder: "process-1", concurrency: 4 });
		const exit = await child;
		expect(exit.code, exit.out).toBe(0);
		expect(local.failed + (exit.result?.failed ?? 0)).toBe(0);
		// Both did part of the work, and together all of it, once.
		expect(local.renewed).toBeGreaterThan(0);
		expect(exit.result?.renewed).toBeGreaterThan(0);
		expect(local.renewed + (exit.result?.renewed ?? 0)).toBe(TENANTS.length);
		await expectEachRenewedOnce(f);
	});
});

describe("two runners on one store: each failover is applied exactly once", () => {
	let pdns: PdnsServer;
	beforeAll(async () => {
		pdns = await startPdnsServer({ zones: [ZONE] });
	});
	afterAll(async () => {
		await pdns?.stop();
	});

	async function deadNode() {
		fx = await createJobsFixture({ pdns });
		const { a, b, aId } = await twoEuNodesTwoTenants(fx.platform);
		origins.push(a, b);
		await a.kill();
		return { f: fx, aId };
	}

	async function expectAppliedOnce(f: JobsFixture, nodeId: string) {
		const chain = await auditActions(f.platform, EU, "platform");
		expect(chain.filter((e) => e.action === "node.unhealthy" && e.subject === nodeId)).toHaveLength(
			1,
		);
		expect(
			chain.filter((e) => e.action === "failover.applied" && e.subject === nodeId),
		).toHaveLength(1);
		for (const id of ["ten_x", "ten_y"]) {
			expect(
				(await auditActions(f.platform, EU, id)).filter((e) => e.action === "dns.failover"),
			).toHaveLength(1);
			expect(await pdns.query(`${id.slice(4)}.${ZONE}`, "A")).toEqual(["192.0.2.11"]);
		}
	}

	it("in one process: racing probe passes and failover passes", async () => {
		const { f, aId } = await deadNode();
		for (let round = 0; round < 4; round++) {
			const passes = await Promise.all([
				probeNodes(f.platform, { holder: "runner-1", timeoutMs: 1000 }),
				probeNodes(f.platform, { holder: "runner-2", timeoutMs: 1000 }),
				applyPendingFailovers(f.platform, { holder: "runner-1" }),
				applyPendingFailovers(f.platform, { holder: "runner-2" }),
			]);
			// One runner holds each region's probe lease; the other leaves the region alone.
			expect(passes[0].contendedRegions.length + passes[1].contendedRegions.length).toBe(3);
			f.clock.advance(10_000);
		}
		await expectAppliedOnce(f, aId);
	});

	it("in two processes: a pending failover is applied by one of them", async () => {
		const { f, aId } = await deadNode();
		for (let i = 0; i < 3; i++)
			await probeNodes(f.platform, { holder: "prober", applyFailover: false, timeoutMs: 1000 });
		const [child, local] = await Promise.all([
			spawnRunner({
				dir: f.t.dir,
				job: "apply-failovers",
				holder: "process-2",
				now: f.clock.now(),
				pdns,
			}),
			applyPendingFailovers(f.platform, { holder: "process-1" }),
		]);
		expect(child.code, child.out).toBe(0);
		// The loser either found it done or found the winner's lease: one application in all.
		expect(local.applied.length + (child.result?.applied ?? 0)).toBe(1);
		await expectAppliedOnce(f, aId);
	});
});
