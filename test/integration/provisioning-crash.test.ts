import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { and, eq } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import {
	auditEvents,
	certificates,
	dnsRecords,
	provisioningJobs,
	routes,
} from "../../db/schema/region";
import { verifyAuditChains } from "../../functions/audit/verify-audit";
import { registerNode } from "../../functions/services/nodes";
import { runDueJobs } from "../../functions/services/provisioning/run-jobs";
import { createTenant } from "../../functions/services/tenants";
import { FakeClock } from "../helpers/fake-clock";
import { createTestPlatform, type TestPlatform } from "../helpers/test-platform";

const runner = fileURLToPath(new URL("../helpers/crash-runner.ts", import.meta.url));

function runUntilKilled(
	dir: string,
	step: string,
	holder: string,
): Promise<{ code: number | null; signal: string | null; out: string }> {
	return new Promise((resolve, reject) => {
		const child = spawn(process.execPath, ["--import", "tsx", runner, dir, step, holder], {
			stdio: ["ignore", "pipe", "pipe"],
		});
		let out = "";
		child.stdout.on("data", (d) => {
			out += d;
		});
		child.stderr.on("data", (d) => {
			out += d;
		});
		child.on("error", reject);
		child.on("exit", (code, signal) => resolve({ code, signal, out }));
	});
}

let t: TestPlatform | undefined;
afterEach(() => t?.close());

describe("a provisioning job survives kill -9 between steps", () => {
	for (const step of ["validate", "dns", "certificate", "route"]) {
		it(`completes exactly once after a crash right after "${step}"`, async () => {
			t = await createTestPlatform();
			const ctx = { platform: t.platform, actor: "test" };
			await registerNode({
				ctx,
				input: {
					regionId: "eu-central",
					name: "eu-1",
					address: "192.0.2.20",
					instanceUrls: ["http://127.0.0.1:9"],
				},
			});
			const tenant = await createTenant({
				ctx,
				input: { id: "ten_crash", slug: "crash", homeRegion: "eu-central" },
			});
			const jobId = tenant.provisioning!.jobId;

			const crashed = await runUntilKilled(t.dir, step, "node-a");
			expect(crashed.signal, crashed.out).toBe("SIGKILL");

			const eu = t.platform.store.region("eu-central").db;
			const [held] = await eu.select().from(provisioningJobs).where(eq(provisioningJobs.id, jobId));
			expect(held?.state).toBe("running");
			expect(held?.leaseHolder).toBe("node-a");

			// Another node cannot take it while node-a's lease runs...
			const clock = new FakeClock(Date.now());
			const other = { ...t.platform, clock };
			expect(await runDueJobs(other, { holder: "node-b" })).toEqual([]);
			// ...but can once the lease has expired, and finishes from the committed step.
			clock.advance(121_000);
			const done = await runDueJobs(other, { holder: "node-b" });
			expect(done).toEqual([{ id: jobId, state: "succeeded", step: "done", lastError: null }]);

			const steps = await eu
				.select({ data: auditEvents.data })
				.from(auditEvents)
				.where(
					and(eq(auditEvents.chain, "ten_crash"), eq(auditEvents.action, "job.step_completed")),
				);
			expect(steps.map((s) => s.data.step)).toEqual([
				"validate",
				"dns",
				"certificate",
				"route",
				"notify",
			]);
			expect(
				(await eu.select().from(certificates).where(eq(certificates.tenantId, "ten_crash"))).length,
			).toBe(1);
			expect(
				(await eu.select().from(dnsRecords).where(eq(dnsRecords.tenantId, "ten_crash"))).length,
			).toBe(1);
			expect((await eu.select().from(routes).where(eq(routes.tenantId, "ten_crash"))).length).toBe(
				1,
			);
			expect((await verifyAuditChains(eu)).ok).toBe(true);
		});
	}

	it("lets the same node resume its own job at once after a restart", async () => {
		t = await createTestPlatform();
		const ctx = { platform: t.platform, actor: "test" };
		await registerNode({
			ctx,
			input: {
				regionId: "eu-central",
				name: "eu-1",
				address: "192.0.2.21",
				instanceUrls: ["http://127.0.0.1:9"],
			},
		});
		const tenant = await createTenant({
			ctx,
			input: { id: "ten_again", slug: "again", homeRegion: "eu-central" },
		});
		const crashed = await runUntilKilled(t.dir, "dns", "node-a");
		expect(crashed.signal).toBe("SIGKILL");
		const done = await runDueJobs(t.platform, { holder: "node-a" });
		expect(done).toEqual([
			{ id: tenant.provisioning!.jobId, state: "succeeded", step: "done", lastError: null },
		]);
	});
});
