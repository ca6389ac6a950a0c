import { eq } from "drizzle-orm";
import { provisioningJobs } from "../../db/schema/region";
import { AppError } from "../errors";
import type { ServiceContext } from "./context";
import { regionOfJob } from "./provisioning/job-kinds";

export interface JobView {
	jobId: string;
	tenantId: string;
	kind: string;
	step: string;
	state: string;
	attempts: number;
	nextAttemptAt: string | null;
	lastError: string | null;
	createdAt: string;
	updatedAt: string;
}

export function jobView(row: typeof provisioningJobs.$inferSelect): JobView {
	return {
		jobId: row.id,
		tenantId: row.tenantId,
		kind: row.kind,
		step: row.step,
		state: row.state,
		attempts: row.attempts,
		nextAttemptAt: row.nextAttemptAt?.toISOString() ?? null,
		lastError: row.lastError,
		createdAt: row.createdAt.toISOString(),
		updatedAt: row.updatedAt.toISOString(),
	};
}

/** A job by id: the id names its region, so only that region's database is read. */
export async function getJob({
	ctx,
	input,
}: {
	ctx: ServiceContext;
	input: { id: string };
}): Promise<JobView> {
	const regionId = regionOfJob(input.id);
	const { store } = ctx.platform;
	const row =
		regionId && store.hasRegion(regionId)
			? await store
					.region(regionId)
					.db.query.provisioningJobs.findFirst({ where: eq(provisioningJobs.id, input.id) })
			: undefined;
	if (!row) throw new AppError("not_found", `job "${input.id}" not found`);
	return jobView(row);
}
