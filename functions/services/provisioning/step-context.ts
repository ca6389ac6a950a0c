import type { RegionTx } from "../../../db/route-version";
import type { provisioningJobs, tenants } from "../../../db/schema/region";
import type { RegionHandle } from "../../../db/store";
import type { Platform } from "../context";

export type JobRow = typeof provisioningJobs.$inferSelect;
export type TenantRow = typeof tenants.$inferSelect;

export interface StepContext {
	platform: Platform;
	region: RegionHandle;
	job: JobRow;
	tenant: TenantRow;
	actor: string;
	/** The hostname this job works on: the custom domain, or the tenant's platform hostname. */
	hostname: string;
	/** Marks the step done and audits it, inside the caller's transaction (so both commit together). */
	complete(tx: RegionTx, data?: Record<string, unknown>): Promise<void>;
}

export type StepFn = (ctx: StepContext) => Promise<void>;

/** A failure worth retrying later (a provider down, DNS not there yet). */
export class RetryableError extends Error {
	readonly retryable = true;
	override name = "RetryableError";
}

/** A failure no retry will fix (the tenant was deleted, policy refuses it). */
export class PermanentError extends Error {
	readonly retryable = false;
	override name = "PermanentError";
}

export function isRetryable(err: unknown): boolean {
	if (err && typeof err === "object" && "retryable" in err)
		return Boolean((err as { retryable: unknown }).retryable);
	// AppErrors are decisions (validation, conflict), not outages.
	if (err instanceof Error && err.name === "AppError") return false;
	return true;
}
