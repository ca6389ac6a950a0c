import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { verifyAuditChains } from "../../functions/audit/verify-audit";
import { applyPendingFailovers } from "../../functions/jobs/apply-failover";
import { addMetrics, emptyMetrics } from "../../functions/jobs/job-metrics";
import { probeNodes } from "../../functions/jobs/probe-nodes";
import type { LogLevel } from "../../functions/runtime";
import { type PdnsServer, startPdnsServer } from "../helpers/pdns-server";
import { type HealthOrigin, startHealthOrigin } from "./helpers/health-origins";
import {
	addNode,
	addTenant,
	auditActions,
	createJobsFixture,
	EU,
	EU_WEST,
	type JobsFixture,
	US,
	ZONE,
} from "./helpers/jobs-fixture";

const US_ADDRESS = /^198\.51\.100\./;
let pdns: PdnsServer;
let fx: JobsFixture | undefined;
const origins: HealthOrigin[] = [];

beforeAll(async () => {
	pdns = await startPdnsServer({ zones: [ZONE] });
});
afterAll(async () => {
	await pdns?.stop();
});
afterEach(async () => {
	for (const o of origins.splice(0)) await o.kill();
	fx?.close();
});

async function origin(): Promise<HealthOrigin> {
	const o = await startHealthOrigin();
	origins.push(o);
	return o;
}

describe("DNS failover stays inside residency (real PowerDNS, real origins on 127.0.0.1)", () => {
	it("moves an EU tenant to its EU backup region, then fails static: never a US address", async () => {
		fx = await createJobsFixture({ pdns });
		const { platform, clock } = fx;
		const logs: Array<{ level: LogLevel; message: string; fields?: Record<string, unknown> }> = [];
		platform.logger = { log: (level, message, fields) => logs.push({ level, message, fields }) };

		const [euA, euB, west, us] = [await origin(), await origin(), await origin(), await origin()];
		await addNode(platform, {
			region: EU,
			name: "eu-a",
			address: "192.0.2.10",
			healthUrl: euA.healthUrl,
		});
		await addNode(platform, {
			region: EU,
			name: "eu-b",
			address: "192.0.2.11",
			healthUrl: euB.healthUrl,
		});
		await addNode(platform, {
			region: EU_WEST,
			name: "west-1",
			address: "192.0.2.50",
			healthUrl: west.healthUrl,
		});
		await addNode(platform, {
			region: US,
			name: "us-1",
			address: "198.51.100.1",
			healthUrl: us.healthUrl,
		});
		// Sovereign EU tenant (EU regions only) and a standard tenant that allows the US as backup.
		await addTenant(platform, {
			id: "ten_sov",
			slug: "sov",
			home: EU,
			allowed: [EU, EU_WEST],
			profile: "sovereign",
		});
		await addTenant(platform, { id: "ten_std", slug: "std", home: EU, allowed: [EU, US] });
		const sov = `sov.${ZONE}`;
		const std = `std.${ZONE}`;
		const answers = async (name: string) => (await pdns.query(name, "A")).sort();
		const metrics = emptyMetrics();
		const probeUntilStable = async () => {
			// fall = 3: three passes, 10 s apart on the fake clock; the probes themselves are real.
			for (let i = 0; i < 3; i++) {
				const pass = await probeNodes(platform, { holder: "runner", timeoutMs: 1000 });
				addMetrics(metrics, pass.metrics);
				clock.advance(10_000);
				// Whatever happened, the sovereign tenant's public answer has no US address.
				expect((await answers(sov)).filter((a) => US_ADDRESS.test(a))).toEqual([]);
			}
		};

		expect(await answers(sov)).toEqual(["192.0.2.10", "192.0.2.11"]);
		expect(await answers(std)).toEqual(["192.0.2.10", "192.0.2.11"]);

		await euA.kill();
		await probeUntilStable();
		expect(await answers(sov)).toEqual(["192.0.2.11"]);
		expect(await answers(std)).toEqual(["192.0.2.11"]);

		// The home region is empty: each tenant moves to its first backup, in its own residency.
		await euB.kill();
		await probeUntilStable();
		expect(await answers(sov)).toEqual(["192.0.2.50"]);
		expect(await answers(std)).toEqual(["198.51.100.1"]);

		// No EU node at all: the sovereign tenant keeps its last healthy set, never the healthy US node.
		await west.kill();
		await probeUntilStable();
		expect(await answers(sov)).toEqual(["192.0.2.50"]);
		expect(await answers(std)).toEqual(["198.51.100.1"]);
		expect(metrics.dns_fail_static_total).toBe(1);
		const alert = logs.find((l) => l.fields?.alert === "dns_fail_static");
		expect(alert).toMatchObject({
			level: "error",
			fields: { tenant: "ten_sov", regions: [EU, EU_WEST] },
		});
		const sovChain = await auditActions(platform, EU, "ten_sov");
		expect(sovChain.filter((e) => e.action === "dns.fail_static")).toHaveLength(1);

		// Home comes back (rise = 2): both tenants return home.
		await euA.revive();
		for (let i = 0; i < 2; i++) {
			addMetrics(
				metrics,
				(await probeNodes(platform, { holder: "runner", timeoutMs: 1000 })).metrics,
			);
			clock.advance(10_000);
		}
		expect(await answers(sov)).toEqual(["192.0.2.10"]);
		expect(await answers(std)).toEqual(["192.0.2.10"]);

		// Every DNS change is in the tenant's chain, in order, and the chains verify.
		expect(
			(await auditActions(platform, EU, "ten_sov"))
				.filter((e) => e.action.startsWith("dns."))
				.map((e) => [
					e.action,
					(e.data.changes as Array<{ after: string[] }> | undefined)?.[0]?.after,
				]),
		).toEqual([
			["dns.records_set", undefined],
			["dns.failover", ["192.0.2.11"]],
			["dns.failover", ["192.0.2.50"]],
			["dns.fail_static", undefined],
			["dns.recovery", ["192.0.2.10"]],
		]);
		for (const region of [EU, EU_WEST, US])
			expect((await verifyAuditChains(platform.store.region(region).db)).ok).toBe(true);
	});

	it("keeps a failover pending while the DNS provider is down and finishes it once it answers", async () => {
		fx = await createJobsFixture({ pdns });
		const { platform, clock } = fx;
		const [a, b] = [await origin(), await origin()];
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
		await addTenant(platform, { id: "ten_p", slug: "pending", home: EU });

		// The DNS provider fails every write, as an unreachable PowerDNS would.
		const real = platform.providers;
		let dnsDown = true;
		platform.providers = {
			...real,
			get: ((kind: "dns", name: string) => {
				const provider = real.get(kind, name);
				if (kind !== "dns" || !dnsDown) return provider;
				return {
					...provider,
					capabilities: provider.capabilities,
					upsert: async () => {
						throw new Error("PowerDNS is unavailable");
					},
					remove: async () => {
						throw new Error("PowerDNS is unavailable");
					},
				};
			}) as typeof real.get,
		};
		await a.kill();
		for (let i = 0; i < 3; i++) {
			await probeNodes(platform, { holder: "runner", timeoutMs: 1000 });
			clock.advance(10_000);
		}
		expect((await pdns.query(`pending.${ZONE}`, "A")).sort()).toEqual(["192.0.2.10", "192.0.2.11"]);
		const stillPending = await applyPendingFailovers(platform, { holder: "runner" });
		expect(stillPending.applied).toEqual([
			expect.objectContaining({
				nodeId: aId,
				complete: false,
				tenants: [expect.objectContaining({ kind: "error" })],
			}),
		]);

		dnsDown = false;
		const done = await applyPendingFailovers(platform, { holder: "runner" });
		expect(done.applied).toEqual([expect.objectContaining({ nodeId: aId, complete: true })]);
		expect(await pdns.query(`pending.${ZONE}`, "A")).toEqual(["192.0.2.11"]);
		expect((await applyPendingFailovers(platform, { holder: "runner" })).applied).toEqual([]);
	});
});
