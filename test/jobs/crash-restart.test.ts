import { and, eq } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { certificates, leases, nodes, routes } from "../../db/schema/region";
import { verifyAuditChains } from "../../functions/audit/verify-audit";
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
	nodeRow,
	twoEuNodesTwoTenants,
	ZONE,
} from "./helpers/jobs-fixture";
import { spawnRunner } from "./helpers/spawn-runner";

let fx: JobsFixture | undefined;
const origins: HealthOrigin[] = [];
afterEach(async () => {
	for (const o of origins.splice(0)) await o.kill();
	fx?.close();
});

async function renewalsOf(f: JobsFixture, tenantId: string) {
	return (await auditActions(f.platform, EU, tenantId)).filter(
		(e) => e.action === "certificate.renewed",
	);
}

async function expectRenewedOnce(f: JobsFixture, tenantId: string) {
	expect(await renewalsOf(f, tenantId)).toHaveLength(1);
	const rows = await f.platform.store
		.region(EU)
		.db.select()
		.from(certificates)
		.where(eq(certificates.tenantId, tenantId));
	expect(rows.map((r) => r.status).sort()).toEqual(["active", "superseded"]);
	const [route] = await f.platform.store
		.region(EU)
		.db.select()
		.from(routes)
		.where(eq(routes.tenantId, tenantId));
	expect(route?.certificateId).toBe(rows.find((r) => r.status === "active")?.id);
}

describe("kill -9 during a renewal, then restart: each certificate is renewed once", () => {
	async function twoDueCertificates() {
		fx = await createJobsFixture();
		await addNode(fx.platform, { region: EU, name: "eu-a", address: "192.0.2.10" });
		await addTenant(fx.platform, { id: "ten_a", slug: "a", home: EU });
		await addTenant(fx.platform, { id: "ten_b", slug: "b", home: EU });
		const [cert] = await activeCertificates(fx.platform, EU, "ten_a");
		const due = oneThirdRemainingAt(cert!);
		fx.clock.set(due);
		return { f: fx, due };
	}

	it("after the CA issued but before the certificate was stored: the old one serves, another node finishes after the lease", async () => {
		const { f, due } = await twoDueCertificates();
		const crashed = await spawnRunner({
			dir: f.t.dir,
			job: "renew",
			holder: "node-a",
			now: due,
			crashAt: "after-issue",
		});
		expect(crashed.signal, crashed.out).toBe("SIGKILL");
		// Nothing stored: both tenants still have their first certificate, in service.
		for (const t of ["ten_a", "ten_b"]) {
			expect(await renewalsOf(f, t)).toEqual([]);
			expect(await activeCertificates(f.platform, EU, t)).toHaveLength(1);
		}
		const held = await f.platform.store.region(EU).db.select().from(leases);
		expect(held.filter((l) => l.name.startsWith("certificate:")).map((l) => l.holder)).toContain(
			"node-a",
		);

		// node-b cannot take what node-a's leases still cover...
		const during = await renewDueCertificates(f.platform, { holder: "node-b" });
		expect(during.renewed + during.busy).toBe(2);
		// ...and renews the rest once they run out.
		f.clock.advance(10 * 60_000);
		await renewDueCertificates(f.platform, { holder: "node-b" });
		await expectRenewedOnce(f, "ten_a");
		await expectRenewedOnce(f, "ten_b");
		expect((await renewDueCertificates(f.platform, { holder: "node-b" })).outcomes).toEqual([]);
		expect((await verifyAuditChains(f.platform.store.region(EU).db)).ok).toBe(true);
	});

	it("after the certificate was stored but before the lease was given back: the restarted node does not renew it again", async () => {
		const { f, due } = await twoDueCertificates();
		const crashed = await spawnRunner({
			dir: f.t.dir,
			job: "renew",
			holder: "node-a",
			now: due,
			crashAt: "after-store",
		});
		expect(crashed.signal, crashed.out).toBe("SIGKILL");
		const renewedBeforeCrash = [
			...(await renewalsOf(f, "ten_a")),
			...(await renewalsOf(f, "ten_b")),
		];
		expect(renewedBeforeCrash.length).toBeGreaterThanOrEqual(1);

		// The same node restarts (stable holder id): it gets its own leases back at once.
		const restarted = await renewDueCertificates(f.platform, { holder: "node-a" });
		expect(restarted.renewed).toBe(2 - renewedBeforeCrash.length);
		await expectRenewedOnce(f, "ten_a");
		await expectRenewedOnce(f, "ten_b");
	});
});

describe("kill -9 during a failover, then restart: the failover completes once", () => {
	let pdns: PdnsServer;
	beforeAll(async () => {
		pdns = await startPdnsServer({ zones: [ZONE] });
	});
	afterAll(async () => {
		await pdns?.stop();
	});

	async function twoNodesTwoTenants() {
		fx = await createJobsFixture({ pdns });
		const { a, b, aId } = await twoEuNodesTwoTenants(fx.platform);
		origins.push(a, b);
		return { f: fx, a, aId };
	}

	const answers = async (slug: string) => (await pdns.query(`${slug}.${ZONE}`, "A")).sort();
	async function expectFailedOverOnce(f: JobsFixture, nodeId: string) {
		expect(await answers("x")).toEqual(["192.0.2.11"]);
		expect(await answers("y")).toEqual(["192.0.2.11"]);
		for (const t of ["ten_x", "ten_y"])
			expect(
				(await auditActions(f.platform, EU, t)).filter((e) => e.action === "dns.failover"),
			).toHaveLength(1);
		const platformChain = await auditActions(f.platform, EU, "platform");
		expect(
			platformChain.filter((e) => e.action === "node.unhealthy" && e.subject === nodeId),
		).toHaveLength(1);
		expect(
			platformChain.filter((e) => e.action === "failover.applied" && e.subject === nodeId),
		).toHaveLength(1);
		expect(await nodeRow(f.platform, EU, nodeId)).toMatchObject({
			state: "unhealthy",
			dnsAppliedState: "unhealthy",
		});
		expect((await verifyAuditChains(f.platform.store.region(EU).db)).ok).toBe(true);
	}

	it("after the node's state change committed but before any DNS was written", async () => {
		const { f, a, aId } = await twoNodesTwoTenants();
		await a.kill();
		// Two failures already counted: the child's one probe is the third.
		await f.platform.store
			.region(EU)
			.db.update(nodes)
			.set({ consecutiveFailures: 2 })
			.where(eq(nodes.id, aId));
		const crashed = await spawnRunner({
			dir: f.t.dir,
			job: "probe",
			holder: "node-a",
			now: f.clock.now(),
			crashAt: "after-commit",
			pdns,
		});
		expect(crashed.signal, crashed.out).toBe("SIGKILL");
		expect(await nodeRow(f.platform, EU, aId)).toMatchObject({
			state: "unhealthy",
			dnsAppliedState: "healthy",
		});
		expect(await answers("x")).toEqual(["192.0.2.10", "192.0.2.11"]);

		// Restarted, the node's next pass finds the failover pending and applies it.
		const resumed = await applyPendingFailovers(f.platform, { holder: "node-a" });
		expect(resumed.applied).toEqual([expect.objectContaining({ nodeId: aId, complete: true })]);
		await expectFailedOverOnce(f, aId);
		expect((await applyPendingFailovers(f.platform, { holder: "node-b" })).applied).toEqual([]);
	});

	it("after the first tenant's DNS was rewritten: another node finishes the rest once the lease runs out", async () => {
		const { f, a, aId } = await twoNodesTwoTenants();
		await a.kill();
		for (let i = 0; i < 3; i++)
			await probeNodes(f.platform, { holder: "node-a", applyFailover: false, timeoutMs: 1000 });
		const crashed = await spawnRunner({
			dir: f.t.dir,
			job: "apply-failovers",
			holder: "node-a",
			now: f.clock.now(),
			crashAt: "after-first-tenant",
			pdns,
		});
		expect(crashed.signal, crashed.out).toBe("SIGKILL");
		// One tenant moved, the other not yet.
		expect([await answers("x"), await answers("y")].map((v) => v.length).sort()).toEqual([1, 2]);

		const blocked = await applyPendingFailovers(f.platform, { holder: "node-b" });
		expect(blocked).toMatchObject({ applied: [], contended: 1 });
		f.clock.advance(5 * 60_000);
		const finished = await applyPendingFailovers(f.platform, { holder: "node-b" });
		expect(finished.applied).toEqual([expect.objectContaining({ nodeId: aId, complete: true })]);
		await expectFailedOverOnce(f, aId);
		// The dead runner's lease is gone, nothing is left pending.
		const left = await f.platform.store
			.region(EU)
			.db.select()
			.from(leases)
			.where(and(eq(leases.holder, "node-a"), eq(leases.name, `failover:${aId}`)));
		expect(left).toEqual([]);
	});
});
