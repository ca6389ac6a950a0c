import type { RegionTx } from "../../../db/route-version";
import { provisioningJobs } from "../../../db/schema/region";
import { appendAuditEvent } from "../../audit/audit-chain";
import type { Clock } from "../../runtime";
import { JOB_STEPS, type JobKind, jobId } from "./job-kinds";

/** Queues a job inside the caller's transaction, so the change that needs it and the job commit together. */
export async function enqueueJob(
	tx: RegionTx,
	input: {
		regionId: string;
		tenantId: string;
		kind: JobKind;
		jobInput?: Record<string, unknown>;
		eventId?: string;
		actor: string;
		clock: Clock;
	},
): Promise<string> {
	const now = input.clock.now();
	const id = jobId(input.regionId, randomHex(12));
	await tx.insert(provisioningJobs).values({
		id,
		tenantId: input.tenantId,
		kind: input.kind,
		step: JOB_STEPS[input.kind][0],
		state: "pending",
		input: input.jobInput ?? {},
		eventId: input.eventId,
		createdAt: now,
		updatedAt: now,
	});
	await appendAuditEvent(
		tx,
		{
			chain: input.tenantId,
			actor: input.actor,
			action: "job.queued",
			subject: id,
			data: {
				kind: input.kind,
				...(input.eventId ? { eventId: input.eventId } : {}),
				...(input.jobInput ?? {}),
			},
		},
		{ clock: input.clock },
	);
	return id;
}

export function randomHex(bytes: number): string {
	return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) =>
		b.toString(16).padStart(2, "0"),
	).join("");
}
