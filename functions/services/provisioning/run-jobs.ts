import { and, asc, eq, inArray, isNull, lte, or, sql } from "drizzle-orm";
import { provisioningJobs, tenants } from "../../../db/schema/region";
import type { RegionHandle } from "../../../db/store";
import { appendAuditEvent } from "../../audit/audit-chain";
import type { Platform } from "../context";
import { backoffMs, isJobKind, MAX_ATTEMPTS, nextStep } from "./job-kinds";
import { isRetryable, type JobRow, type StepContext } from "./step-context";
import { STEPS } from "./steps";

export interface RunJobsOptions {
	/** Who runs: recorded as the lease holder, so two runners never run one job at once. */
	holder: string;
	leaseMs?: number;
	random?: () => number;
	/** Called after each step commits (metrics, tests that crash a process between steps). */
	onStepCommitted?: (job: JobRow, step: string) => void | Promise<void>;
}

export interface JobOutcome {
	id: string;
	state: JobRow["state"];
	step: string;
	lastError: string | null;
}

/** Runs every due job of every region once (until it finishes or fails an attempt). */
export async function runDueJobs(
	platform: Platform,
	options: RunJobsOptions,
): Promise<JobOutcome[]> {
	const outcomes: JobOutcome[] = [];
	for (const region of platform.store.regions()) {
		const now = platform.clock.now();
		const due = await region.db
			.select({ id: provisioningJobs.id })
			.from(provisioningJobs)
			.where(
				and(
					inArray(provisioningJobs.state, ["pending", "running"]),
					or(isNull(provisioningJobs.nextAttemptAt), lte(provisioningJobs.nextAttemptAt, now)),
				),
			)
			.orderBy(asc(provisioningJobs.createdAt))
			.limit(100);
		for (const { id } of due) {
			const outcome = await runJob(platform, region, id, options);
			if (outcome) outcomes.push(outcome);
		}
	}
	return outcomes;
}

/**
 * Claims one job through its lease and runs its remaining steps. Jobs of one tenant run one
 * at a time, oldest first. Returns undefined when the job is not claimable right now.
 */
export async function runJob(
	platform: Platform,
	region: RegionHandle,
	id: string,
	options: RunJobsOptions,
): Promise<JobOutcome | undefined> {
	const leaseMs = options.leaseMs ?? 120_000;
	const random = options.random ?? Math.random;
	let job = await claim(region, id, options.holder, platform.clock.now(), leaseMs);
	if (!job) return undefined;
	if (!isJobKind(job.kind)) throw new Error(`job ${job.id} has unknown kind ${job.kind}`);
	const kind = job.kind;
	const actor = `system:provisioning:${job.id}`;

	while (job.step !== "done") {
		const tenant = await region.db.query.tenants.findFirst({ where: eq(tenants.id, job.tenantId) });
		const step = STEPS[kind][job.step];
		const current: JobRow = job;
		try {
			if (!tenant)
				throw Object.assign(new Error(`tenant ${current.tenantId} is gone`), { retryable: false });
			if (!step)
				throw Object.assign(new Error(`job ${current.id} is at unknown step ${current.step}`), {
					retryable: false,
				});
			let committed: JobRow | undefined;
			const ctx: StepContext = {
				platform,
				region,
				job: current,
				tenant,
				actor,
				hostname:
					typeof current.input.hostname === "string"
						? current.input.hostname
						: `${tenant.slug}.${platform.config.baseDomain}`,
				async complete(tx, data = {}) {
					const now = platform.clock.now();
					const following = nextStep(kind, current.step);
					const [row] = await tx
						.update(provisioningJobs)
						.set({
							step: following,
							state: following === "done" ? "succeeded" : "running",
							lastError: null,
							updatedAt: now,
							leaseExpiresAt: following === "done" ? null : new Date(now.getTime() + leaseMs),
							leaseHolder: following === "done" ? null : options.holder,
							result: { ...(current.result ?? {}), ...data },
						})
						// Only the lease holder may advance the job: a runner that lost its lease stops here.
						.where(
							and(
								eq(provisioningJobs.id, current.id),
								eq(provisioningJobs.step, current.step),
								eq(provisioningJobs.leaseHolder, options.holder),
							),
						)
						.returning();
					if (!row) throw new LostLeaseError(current.id);
					await appendAuditEvent(
						tx,
						{
							chain: current.tenantId,
							actor,
							action: "job.step_completed",
							subject: current.id,
							data: { kind, step: current.step, next: following, ...data },
						},
						{ clock: platform.clock },
					);
					committed = row;
				},
			};
			await step(ctx);
			if (!committed)
				throw new Error(`step ${current.step} of job ${current.id} returned without completing`);
			job = committed;
			await options.onStepCommitted?.(job, current.step);
		} catch (err) {
			if (err instanceof LostLeaseError) return undefined;
			return fail(platform, region, current, err, options.holder, random);
		}
	}
	return { id: job.id, state: job.state, step: job.step, lastError: job.lastError };
}

class LostLeaseError extends Error {
	constructor(id: string) {
		super(`lost the lease on job ${id}`);
	}
}

async function claim(
	region: RegionHandle,
	id: string,
	holder: string,
	now: Date,
	leaseMs: number,
): Promise<JobRow | undefined> {
	const until = new Date(now.getTime() + leaseMs);
	const [row] = await region.db
		.update(provisioningJobs)
		.set({ leaseHolder: holder, leaseExpiresAt: until, state: "running", updatedAt: now })
		.where(
			and(
				eq(provisioningJobs.id, id),
				inArray(provisioningJobs.state, ["pending", "running"]),
				or(isNull(provisioningJobs.nextAttemptAt), lte(provisioningJobs.nextAttemptAt, now)),
				or(
					isNull(provisioningJobs.leaseExpiresAt),
					lte(provisioningJobs.leaseExpiresAt, now),
					eq(provisioningJobs.leaseHolder, holder),
				),
				// One job per tenant at a time, oldest first.
				sql`not exists (select 1 from provisioning_jobs other where other.tenant_id = ${provisioningJobs.tenantId}
					and other.id != ${provisioningJobs.id} and other.state in ('pending', 'running')
					and (other.created_at < ${provisioningJobs.createdAt}
						or (other.lease_expires_at > ${now.getTime()} and other.lease_holder != ${holder})))`,
			),
		)
		.returning();
	return row;
}

async function fail(
	platform: Platform,
	region: RegionHandle,
	job: JobRow,
	err: unknown,
	holder: string,
	random: () => number,
): Promise<JobOutcome> {
	const now = platform.clock.now();
	const attempts = job.attempts + 1;
	const message = err instanceof Error ? err.message : String(err);
	const final = !isRetryable(err) || attempts >= MAX_ATTEMPTS;
	const nextAttemptAt = final ? null : new Date(now.getTime() + backoffMs(attempts, random));
	await region.db.transaction(async (tx) => {
		await tx
			.update(provisioningJobs)
			.set({
				attempts,
				state: final ? "failed" : "pending",
				nextAttemptAt,
				lastError: message,
				leaseHolder: null,
				leaseExpiresAt: null,
				updatedAt: now,
			})
			.where(and(eq(provisioningJobs.id, job.id), eq(provisioningJobs.leaseHolder, holder)));
		await appendAuditEvent(
			tx,
			{
				chain: job.tenantId,
				actor: `system:provisioning:${job.id}`,
				action: final ? "job.failed" : "job.attempt_failed",
				subject: job.id,
				data: {
					step: job.step,
					attempts,
					error: message,
					...(nextAttemptAt ? { nextAttemptAt: nextAttemptAt.toISOString() } : {}),
				},
			},
			{ clock: platform.clock },
		);
	});
	platform.logger.log(
		final ? "error" : "warn",
		final ? "provisioning job failed" : "provisioning step failed; will retry",
		{
			job: job.id,
			tenant: job.tenantId,
			step: job.step,
			attempts,
			error: message,
		},
	);
	return { id: job.id, state: final ? "failed" : "pending", step: job.step, lastError: message };
}
