import { eq } from "drizzle-orm";
import { afterEach, describe, expect, it, vi } from "vitest";
import { instances, leases } from "../../db/schema/region";
import { oneThirdRemainingAt } from "../../functions/jobs/renewal-policy";
import { runScheduledJobs } from "../../functions/jobs/scheduler";
import { type SchedulerHost, startScheduler } from "../../functions/node/scheduler-host";
import { type HealthOrigin, startHealthOrigin } from "./helpers/health-origins";
import {
	activeCertificates,
	addNode,
	addTenant,
	createJobsFixture,
	dnsValues,
	EU,
	type JobsFixture,
	nodeRow,
	scriptedProber,
} from "./helpers/jobs-fixture";

let fx: JobsFixture | undefined;
let host: SchedulerHost | undefined;
const origins: HealthOrigin[] = [];
afterEach(async () => {
	await host?.stop();
	host = undefined;
	for (const o of origins.splice(0)) await o.kill();
	fx?.close();
});

describe("runScheduledJobs (one cron invocation)", () => {
	it("probes, confirms a failing node within the same run, fails DNS over and sweeps renewals", async () => {
		fx = await createJobsFixture();
		const { platform, clock } = fx;
		const a = await addNode(platform, { region: EU, name: "eu-a", address: "192.0.2.10" });
		await addNode(platform, { region: EU, name: "eu-b", address: "192.0.2.11" });
		await addTenant(platform, { id: "ten_a", slug: "a", home: EU });
		const [cert] = await activeCertificates(platform, EU, "ten_a");
		clock.set(oneThirdRemainingAt(cert!));
		const prober = scriptedProber();
		prober.set(a, false);
		const sleeps: number[] = [];
		const sleep = async (ms: number) => {
			sleeps.push(ms);
			clock.advance(ms);
		};

		const run = await runScheduledJobs(platform, { holder: "cron", probe: { prober }, sleep });
		expect(run.errors).toEqual([]);
		// One regular probe and two confirming ones, 1 s apart: fall = 3 reached in one invocation.
		expect(sleeps).toEqual([1000, 1000]);
		expect(run.probes?.transitions.map((t) => [t.nodeId, t.to])).toEqual([[a, "unhealthy"]]);
		expect(await dnsValues(platform, EU, "ten_a")).toEqual({ A: ["192.0.2.11"] });
		expect(run.renewals).toMatchObject({ renewed: 1 });
		expect(run.metrics).toMatchObject({
			node_state_changes_total: 1,
			dns_failover_changes_total: 1,
			certificate_renewals_total: 1,
		});

		// A second trigger within the renewal interval probes again but does not sweep.
		clock.advance(60_000);
		const again = await runScheduledJobs(platform, { holder: "cron", probe: { prober }, sleep });
		expect(again.renewals).toBe("not-due");
		clock.advance(5 * 60_000);
		const later = await runScheduledJobs(platform, { holder: "cron", probe: { prober }, sleep });
		expect(later.renewals).toMatchObject({ renewed: 0, failed: 0 });
	});

	it("lets one of two runners triggered together sweep each region", async () => {
		fx = await createJobsFixture();
		const { platform } = fx;
		const prober = scriptedProber();
		const options = { probe: { prober }, confirm: { rounds: 0, delayMs: 0 } };
		const [one, two] = await Promise.all([
			runScheduledJobs(platform, { holder: "worker-1", ...options }),
			runScheduledJobs(platform, { holder: "worker-2", ...options }),
		]);
		const swept = [one.renewals, two.renewals].filter((r) => r !== "not-due");
		expect(swept.length).toBeGreaterThanOrEqual(1);
		const marks = await Promise.all(
			platform.store.regions().map(async (r) => {
				const rows = await r.db
					.select()
					.from(leases)
					.where(eq(leases.name, "schedule:renew-certificates"));
				return rows.length;
			}),
		);
		expect(marks).toEqual([1, 1, 1]);
		// A one-shot run leaves no probe lease behind: the next trigger may come as another holder.
		for (const region of platform.store.regions()) {
			const held = await region.db.select().from(leases).where(eq(leases.name, "job:probe-nodes"));
			expect(held).toEqual([]);
		}
		const next = await runScheduledJobs(platform, { holder: "worker-3", ...options });
		expect(next.probes?.contendedRegions).toEqual([]);
	});
});

describe("startScheduler (the Node host, real timers, real origins on 127.0.0.1)", () => {
	it("takes a dead node out on its interval, and gives its leases back on stop", async () => {
		fx = await createJobsFixture();
		const { platform } = fx;
		// The host runs on real time: the platform clock is the system's here.
		platform.clock = { now: () => new Date() };
		const a = await startHealthOrigin();
		const b = await startHealthOrigin();
		origins.push(a, b);
		const aId = await addNode(platform, {
			region: EU,
			name: "eu-a",
			address: "192.0.2.10",
			healthUrl: a.healthUrl,
		});
		await addNode(platform, {
			region: EU,
			name: "eu-b",
			address: "192.0.2.11",
			healthUrl: b.healthUrl,
		});
		await addTenant(platform, { id: "ten_a", slug: "a", home: EU });

		host = startScheduler(platform, {
			holder: "node-1",
			probeIntervalMs: 100,
			fastProbeIntervalMs: 50,
			probeTimeoutMs: 500,
		});
		await vi.waitFor(() => expect(host!.metrics().health_probes_total).toBeGreaterThan(0), {
			timeout: 5000,
		});
		await a.kill();
		await vi.waitFor(
			async () => expect((await nodeRow(platform, EU, aId)).state).toBe("unhealthy"),
			{
				timeout: 10_000,
				interval: 50,
			},
		);
		await vi.waitFor(
			async () => expect(await dnsValues(platform, EU, "ten_a")).toEqual({ A: ["192.0.2.11"] }),
			{
				timeout: 5000,
			},
		);
		expect(host.metrics().node_state_changes_total).toBe(1);

		await host.stop();
		host = undefined;
		const held = await platform.store
			.region(EU)
			.db.select()
			.from(leases)
			.where(eq(leases.name, "job:probe-nodes"));
		expect(held).toEqual([]);
	});

	it("probes a node the edge reports suspect at once, long before its regular interval", async () => {
		fx = await createJobsFixture();
		const { platform } = fx;
		platform.clock = { now: () => new Date() };
		const a = await startHealthOrigin();
		origins.push(a);
		const aId = await addNode(platform, {
			region: EU,
			name: "eu-a",
			address: "192.0.2.10",
			healthUrl: a.healthUrl,
		});
		// The regular pass is a minute away; only the suspect signal can explain a probe.
		host = startScheduler(platform, {
			holder: "node-1",
			probeIntervalMs: 60_000,
			fastProbeIntervalMs: 50,
			probeTimeoutMs: 500,
		});
		await vi.waitFor(() => expect(host!.metrics().health_probes_total).toBe(1), { timeout: 5000 });
		const hitsBefore = a.hits;
		const [instance] = await platform.store
			.region(EU)
			.db.select()
			.from(instances)
			.where(eq(instances.nodeId, aId));
		host.suspect(instance!.id);
		await vi.waitFor(() => expect(a.hits).toBe(hitsBefore + 1), { timeout: 5000, interval: 10 });
		// The pass that made the probe answers the mark when it commits.
		await vi.waitFor(async () => expect((await nodeRow(platform, EU, aId)).suspectAt).toBeNull(), {
			timeout: 5000,
			interval: 10,
		});

		// A dead node reported suspect is confirmed down by the fast passes: 3 failures, not 3 minutes.
		await a.kill();
		const started = Date.now();
		host.suspect(instance!.id);
		await vi.waitFor(
			async () => expect((await nodeRow(platform, EU, aId)).state).toBe("unhealthy"),
			{
				timeout: 10_000,
				interval: 20,
			},
		);
		expect(Date.now() - started).toBeLessThan(5000);
	});
});
