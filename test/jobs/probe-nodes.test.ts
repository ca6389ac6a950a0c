import { eq } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { readRouteVersion } from "../../db/route-version";
import { leases } from "../../db/schema/region";
import { verifyAuditChains } from "../../functions/audit/verify-audit";
import type { ProbeTarget } from "../../functions/jobs/health-probe";
import { markSuspect } from "../../functions/jobs/mark-suspect";
import { probeNodes } from "../../functions/jobs/probe-nodes";
import {
	addNode,
	addTenant,
	auditActions,
	createJobsFixture,
	dnsValues,
	EU,
	EU_WEST,
	type JobsFixture,
	nodeRow,
	scriptedProber,
	US,
} from "./helpers/jobs-fixture";

let fx: JobsFixture | undefined;
afterEach(() => fx?.close());

async function twoEuNodesAndATenant() {
	fx = await createJobsFixture();
	const { platform } = fx;
	const a = await addNode(platform, { region: EU, name: "eu-a", address: "192.0.2.10" });
	const b = await addNode(platform, { region: EU, name: "eu-b", address: "192.0.2.11" });
	await addTenant(platform, { id: "ten_acme", slug: "acme", home: EU });
	return { platform, a, b };
}

describe("health probes: thresholds on the real store", () => {
	it("marks a node unhealthy on the third failure in a row, in one audited transaction, and fails DNS over", async () => {
		const { platform, a, b } = await twoEuNodesAndATenant();
		const prober = scriptedProber();
		expect(await dnsValues(platform, EU, "ten_acme")).toEqual({ A: ["192.0.2.10", "192.0.2.11"] });
		const version = await readRouteVersion(platform.store.region(EU).db);

		prober.set(a, false);
		for (const expected of [1, 2]) {
			const pass = await probeNodes(platform, { holder: "r1", prober, regions: [EU] });
			expect(pass.transitions).toEqual([]);
			const row = await nodeRow(platform, EU, a);
			expect(row).toMatchObject({ state: "healthy", consecutiveFailures: expected });
			expect(row.lastProbeError).toBe("scripted failure");
			fx!.clock.advance(10_000);
		}
		expect(await readRouteVersion(platform.store.region(EU).db)).toBe(version);

		const third = await probeNodes(platform, { holder: "r1", prober, regions: [EU] });
		expect(third.transitions).toEqual([
			expect.objectContaining({
				nodeId: a,
				from: "healthy",
				to: "unhealthy",
				tenants: ["ten_acme"],
			}),
		]);
		expect(await nodeRow(platform, EU, a)).toMatchObject({
			state: "unhealthy",
			dnsAppliedState: "unhealthy",
			stateChangedAt: fx!.clock.now(),
		});
		// The edge sees it at once: the route version moved in the same transaction.
		expect(await readRouteVersion(platform.store.region(EU).db)).toBe(version + 1);
		expect(await dnsValues(platform, EU, "ten_acme")).toEqual({ A: ["192.0.2.11"] });
		expect(third.metrics).toMatchObject({
			node_state_changes_total: 1,
			dns_failover_changes_total: 1,
			health_probe_failures_total: 1,
		});

		const platformChain = await auditActions(platform, EU, "platform");
		const down = platformChain.find((e) => e.action === "node.unhealthy");
		expect(down).toMatchObject({ subject: a, actor: "system:health" });
		expect(down?.data).toMatchObject({
			name: "eu-a",
			from: "healthy",
			to: "unhealthy",
			tenants: ["ten_acme"],
		});
		expect(platformChain.filter((e) => e.action === "failover.applied")).toHaveLength(1);
		const tenantChain = await auditActions(platform, EU, "ten_acme");
		const failover = tenantChain.filter((e) => e.action === "dns.failover");
		expect(failover).toHaveLength(1);
		expect(failover[0]?.data).toMatchObject({
			node: a,
			nodeName: "eu-a",
			nodeState: "unhealthy",
			region: EU,
			changes: [{ type: "A", before: ["192.0.2.10", "192.0.2.11"], after: ["192.0.2.11"] }],
		});
		expect((await verifyAuditChains(platform.store.region(EU).db)).ok).toBe(true);
		void b;
	});

	it("brings it back after two successes in a row, restoring DNS, audited as a recovery", async () => {
		const { platform, a } = await twoEuNodesAndATenant();
		const prober = scriptedProber();
		prober.set(a, false);
		for (let i = 0; i < 3; i++) await probeNodes(platform, { holder: "r1", prober });
		prober.set(a, true);
		const first = await probeNodes(platform, { holder: "r1", prober });
		expect(first.transitions).toEqual([]);
		expect(await dnsValues(platform, EU, "ten_acme")).toEqual({ A: ["192.0.2.11"] });
		const second = await probeNodes(platform, { holder: "r1", prober });
		expect(second.transitions).toEqual([
			expect.objectContaining({ nodeId: a, from: "unhealthy", to: "healthy" }),
		]);
		expect(await dnsValues(platform, EU, "ten_acme")).toEqual({ A: ["192.0.2.10", "192.0.2.11"] });
		const actions = (await auditActions(platform, EU, "ten_acme")).map((e) => e.action);
		expect(actions.filter((x) => x.startsWith("dns."))).toEqual([
			"dns.records_set",
			"dns.failover",
			"dns.recovery",
		]);
	});

	it("does not flap: a node that alternates between failing and answering changes nothing", async () => {
		const { platform, a } = await twoEuNodesAndATenant();
		const prober = scriptedProber();
		const version = await readRouteVersion(platform.store.region(EU).db);
		const before = (await auditActions(platform, EU, "platform")).length;
		for (let i = 0; i < 30; i++) {
			prober.set(a, i % 3 !== 2); // ok, ok, fail: never 3 failures in a row
			const pass = await probeNodes(platform, { holder: "r1", prober });
			expect(pass.transitions).toEqual([]);
			fx!.clock.advance(10_000);
		}
		for (let i = 0; i < 30; i++) {
			prober.set(a, i % 2 === 0); // fail and answer in turn
			await probeNodes(platform, { holder: "r1", prober });
		}
		expect((await nodeRow(platform, EU, a)).state).toBe("healthy");
		expect(await readRouteVersion(platform.store.region(EU).db)).toBe(version);
		expect(await auditActions(platform, EU, "platform")).toHaveLength(before);
		expect(await dnsValues(platform, EU, "ten_acme")).toEqual({ A: ["192.0.2.10", "192.0.2.11"] });
	});

	it("takes a new node from unknown to healthy without a DNS rewrite (both are routable)", async () => {
		fx = await createJobsFixture();
		const { platform } = fx;
		const id = await addNode(platform, {
			region: EU,
			name: "eu-new",
			address: "192.0.2.40",
			state: "unknown",
		});
		const prober = scriptedProber();
		await probeNodes(platform, { holder: "r1", prober });
		const pass = await probeNodes(platform, { holder: "r1", prober });
		expect(pass.transitions).toEqual([
			expect.objectContaining({ nodeId: id, from: "unknown", to: "healthy" }),
		]);
		expect(pass.failover?.applied).toEqual([]);
		expect(await nodeRow(platform, EU, id)).toMatchObject({
			state: "healthy",
			dnsAppliedState: "healthy",
		});
	});

	it("names in the node region's audit only tenants homed there; others get their own event at home", async () => {
		fx = await createJobsFixture();
		const { platform } = fx;
		const west = await addNode(platform, {
			region: EU_WEST,
			name: "west-1",
			address: "192.0.2.50",
		});
		await addNode(platform, { region: EU_WEST, name: "west-2", address: "192.0.2.51" });
		// Homed in eu-central with no node there: served from its backup region eu-west.
		await addTenant(platform, {
			id: "ten_central",
			slug: "central",
			home: EU,
			allowed: [EU, EU_WEST],
		});
		await addTenant(platform, { id: "ten_west", slug: "west", home: EU_WEST });
		const prober = scriptedProber();
		prober.set(west, false);
		for (let i = 0; i < 3; i++) await probeNodes(platform, { holder: "r1", prober });
		const down = (await auditActions(platform, EU_WEST, "platform")).find(
			(e) => e.action === "node.unhealthy",
		);
		expect(down?.data.tenants).toEqual(["ten_west"]);
		const applied = (await auditActions(platform, EU_WEST, "platform")).find(
			(e) => e.action === "failover.applied",
		);
		expect(applied?.data).toMatchObject({
			tenants: [{ tenant: "ten_west", outcome: "changed" }],
			tenantsHomedElsewhere: { [EU]: 1 },
		});
		// The eu-central tenant's own chain, in its own region, records its DNS change.
		expect((await auditActions(platform, EU, "ten_central")).map((e) => e.action)).toContain(
			"dns.failover",
		);
		expect(await dnsValues(platform, EU, "ten_central")).toEqual({ A: ["192.0.2.51"] });
		expect(JSON.stringify(await auditActions(platform, EU_WEST, "platform"))).not.toContain(
			"ten_central",
		);
	});
});

describe("health probes: scheduling details", () => {
	it("probes a suspect node in the fast pass at once, and only it", async () => {
		const { platform, a } = await twoEuNodesAndATenant();
		const prober = scriptedProber();
		await probeNodes(platform, { holder: "r1", prober, mode: "all" });
		prober.calls.length = 0;
		// Nothing suspect, nothing on its way to a change: the fast pass probes nothing.
		await probeNodes(platform, { holder: "r1", prober, mode: "fast" });
		expect(prober.calls).toEqual([]);

		const [instance] = await platform.store
			.region(EU)
			.db.query.instances.findMany({ where: (i, { eq: e }) => e(i.nodeId, a) });
		fx!.clock.advance(100);
		expect(await markSuspect(platform, instance!.id)).toEqual({ nodeId: a, regionId: EU });
		expect((await nodeRow(platform, EU, a)).suspectAt).toEqual(fx!.clock.now());
		prober.set(a, false);
		// Probed 100 ms ago by the regular pass: the suspect probe waits for the fast interval...
		await probeNodes(platform, { holder: "r1", prober, mode: "fast", fastIntervalMs: 1000 });
		expect(prober.calls).toEqual([]);
		// ...and then runs, for that node alone.
		fx!.clock.advance(900);
		await probeNodes(platform, { holder: "r1", prober, mode: "fast", fastIntervalMs: 1000 });
		expect(prober.calls.map((c) => c.nodeId)).toEqual([a]);
		expect(await nodeRow(platform, EU, a)).toMatchObject({
			suspectAt: null,
			consecutiveFailures: 1,
		});

		// Still failing but not yet down: the fast pass keeps confirming it, at most once per interval.
		prober.calls.length = 0;
		await probeNodes(platform, { holder: "r1", prober, mode: "fast", fastIntervalMs: 1000 });
		expect(prober.calls).toEqual([]);
		fx!.clock.advance(1000);
		await probeNodes(platform, { holder: "r1", prober, mode: "fast", fastIntervalMs: 1000 });
		fx!.clock.advance(1000);
		const third = await probeNodes(platform, {
			holder: "r1",
			prober,
			mode: "fast",
			fastIntervalMs: 1000,
		});
		expect(third.transitions.map((t) => t.to)).toEqual(["unhealthy"]);
		expect(await markSuspect(platform, "ins_unknown")).toBeUndefined();
	});

	it("keeps at most `concurrency` probes in flight and staggers their start by the jitter", async () => {
		fx = await createJobsFixture();
		const { platform } = fx;
		for (let i = 0; i < 12; i++)
			await addNode(platform, { region: US, name: `us-${i}`, address: `198.51.100.${i + 1}` });
		let inFlight = 0;
		let peak = 0;
		const prober = async (_t: ProbeTarget) => {
			inFlight++;
			peak = Math.max(peak, inFlight);
			await new Promise((r) => setImmediate(r));
			inFlight--;
			return { ok: true as const };
		};
		const waits: number[] = [];
		const pass = await probeNodes(platform, {
			holder: "r1",
			prober,
			concurrency: 3,
			jitterMs: 500,
			random: () => 0.25,
			sleep: async (ms) => void waits.push(ms),
		});
		expect(pass.probed).toBe(12);
		expect(peak).toBe(3);
		expect(waits).toEqual(Array(12).fill(125));
	});

	it("leaves a region to the runner holding its probe lease until that lease runs out", async () => {
		const { platform, a } = await twoEuNodesAndATenant();
		const prober = scriptedProber();
		await probeNodes(platform, { holder: "r1", prober, leaseMs: 30_000 });
		const other = await probeNodes(platform, { holder: "r2", prober, leaseMs: 30_000 });
		expect(other.contendedRegions).toEqual(expect.arrayContaining([EU, EU_WEST, US]));
		expect(other.probed).toBe(0);
		fx!.clock.advance(30_000);
		prober.set(a, false);
		const takeover = await probeNodes(platform, { holder: "r2", prober, leaseMs: 30_000 });
		expect(takeover.contendedRegions).toEqual([]);
		expect(takeover.failed).toBe(1);
		const [lease] = await platform.store
			.region(EU)
			.db.select()
			.from(leases)
			.where(eq(leases.name, "job:probe-nodes"));
		expect(lease?.holder).toBe("r2");
	});

	it("skips nodes it cannot probe here (no health URL, no TCP) without touching their health", async () => {
		fx = await createJobsFixture();
		const { platform } = fx;
		const id = await addNode(platform, { region: US, name: "tcp-only", address: "198.51.100.9" });
		for (let i = 0; i < 4; i++) {
			const pass = await probeNodes(platform, { holder: "r1", regions: [US], timeoutMs: 100 });
			expect(pass).toMatchObject({ probed: 0, skipped: 1, transitions: [] });
		}
		expect(await nodeRow(platform, US, id)).toMatchObject({
			state: "healthy",
			consecutiveFailures: 0,
			lastProbeAt: null,
		});
	});
});
