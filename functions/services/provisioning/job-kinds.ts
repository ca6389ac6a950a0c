/** Each job kind is an ordered list of idempotent steps; `step` in the row is the next one to run. */
export const JOB_STEPS = {
	provision: ["validate", "dns", "certificate", "route", "notify"],
	deprovision: ["dns", "certificates", "routes", "release"],
	"domain-add": ["verify", "certificate", "route", "notify"],
	"domain-remove": ["routes", "certificates", "release"],
} as const;

export type JobKind = keyof typeof JOB_STEPS;
export type JobStep = (typeof JOB_STEPS)[JobKind][number] | "done";

export function isJobKind(kind: string): kind is JobKind {
	return kind in JOB_STEPS;
}

export function nextStep(kind: JobKind, step: string): JobStep {
	const steps: readonly string[] = JOB_STEPS[kind];
	const i = steps.indexOf(step);
	return (steps[i + 1] as JobStep | undefined) ?? "done";
}

/** Job ids carry their region, so `GET /v1/jobs/:id` finds the one database that holds it. */
export function jobId(regionId: string, random: string): string {
	return `job.${regionId}.${random}`;
}

export function regionOfJob(id: string): string | undefined {
	return /^job\.([a-z][a-z0-9-]{1,31})\.[0-9a-f]{24}$/.exec(id)?.[1];
}

/** Exponential backoff with jitter: 2 s, 4 s, ... capped at 15 min, times 0.5-1.0. */
export function backoffMs(attempts: number, random: () => number): number {
	const base = Math.min(15 * 60_000, 2_000 * 2 ** Math.max(0, attempts - 1));
	return Math.round(base * (0.5 + random() / 2));
}

/** After this many failed attempts a job stops and stays failed, with its last error. */
export const MAX_ATTEMPTS = 12;
