import type { Platform } from "../services/context";
import { deliverDueNotifications } from "../services/provisioning/deliver-notifications";
import { runDueJobs } from "../services/provisioning/run-jobs";
import { type ApplyFailoverResult, applyPendingFailovers } from "./apply-failover";
import type { TcpConnect } from "./health-probe";
import { addMetrics, emptyMetrics, type JobMetrics } from "./job-metrics";
import { acquireLease, leaseNames, releaseLease } from "./leases";
import {
	PROBE_JOB,
	type ProbeNodesOptions,
	type ProbeNodesResult,
	probeNodes,
} from "./probe-nodes";
import {
	RENEW_JOB,
	type RenewOptions,
	type RenewResult,
	renewDueCertificates,
} from "./renew-due-certificates";

export type ScheduledJobName =
	| "probe-nodes"
	| "apply-failovers"
	| "renew-certificates"
	| "provisioning";

export interface ScheduledJobsOptions {
	/** Who runs (leases are taken in this name); stable across restarts of one process. */
	holder: string;
	/** The time the trigger fired (Workers: `controller.scheduledTime`); default the clock. */
	now?: Date;
	/** Default: probes, pending failovers and (when due) the renewal sweep. */
	jobs?: ScheduledJobName[];
	/** For nodes without a health URL (Workers: `connect` from `cloudflare:sockets`). */
	tcpConnect?: TcpConnect;
	probe?: Omit<ProbeNodesOptions, "holder" | "mode">;
	/**
	 * After the probe pass, nodes on their way to a change are probed again this many times,
	 * `delayMs` apart, so one cron invocation can confirm a failure (default 2 rounds, 1 s).
	 */
	confirm?: { rounds: number; delayMs: number };
	sleep?: (ms: number) => Promise<void>;
	renew?: Omit<RenewOptions, "holder" | "scope">;
	/** The renewal sweep runs at most this often across all runners (default 5 min). */
	renewIntervalMs?: number;
}

export interface ScheduledRun {
	probes?: ProbeNodesResult;
	failovers?: ApplyFailoverResult;
	/** "not-due": another run swept within `renewIntervalMs`. */
	renewals?: RenewResult | "not-due";
	metrics: JobMetrics;
	/** Jobs that threw; each is logged, and the others still ran. */
	errors: Array<{ job: ScheduledJobName; error: string }>;
}

export const DEFAULT_RENEW_INTERVAL_MS = 5 * 60_000;
const DEFAULT_JOBS: ScheduledJobName[] = ["probe-nodes", "apply-failovers", "renew-certificates"];

/**
 * One run of the scheduled jobs: what a Workers cron trigger or a Node timer calls. Every job
 * is single-writer through leases, so any number of runners may call this at once.
 */
export async function runScheduledJobs(
	platform: Platform,
	options: ScheduledJobsOptions,
): Promise<ScheduledRun> {
	const jobs = options.jobs ?? DEFAULT_JOBS;
	const run: ScheduledRun = { metrics: emptyMetrics(), errors: [] };
	const guarded = async (job: ScheduledJobName, work: () => Promise<void>) => {
		if (!jobs.includes(job)) return;
		try {
			await work();
		} catch (err) {
			const error = err instanceof Error ? err.message : String(err);
			run.errors.push({ job, error });
			platform.logger.log("error", "scheduled job failed", { job, error });
		}
	};
	const sleep = options.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));

	await guarded("probe-nodes", async () => {
		const probeOptions: ProbeNodesOptions = {
			...options.probe,
			holder: options.holder,
			...(options.tcpConnect ? { tcpConnect: options.tcpConnect } : {}),
		};
		const first = await probeNodes(platform, { ...probeOptions, mode: "all" });
		addMetrics(run.metrics, first.metrics);
		run.probes = first;
		const confirm = options.confirm ?? { rounds: 2, delayMs: 1_000 };
		for (let round = 0; round < confirm.rounds; round++) {
			await sleep(confirm.delayMs);
			const again = await probeNodes(platform, {
				...probeOptions,
				mode: "fast",
				fastIntervalMs: confirm.delayMs,
			});
			addMetrics(run.metrics, again.metrics);
			run.probes.transitions.push(...again.transitions);
			if (again.probed === 0) break;
		}
		// A one-shot run gives the probe leases back: the next trigger may run under another holder.
		for (const region of platform.store.regions())
			await releaseLease(region.db, { name: leaseNames.job(PROBE_JOB), holder: options.holder });
	});
	await guarded("apply-failovers", async () => {
		run.failovers = await applyPendingFailovers(platform, { holder: options.holder });
		addMetrics(run.metrics, run.failovers.metrics);
	});
	await guarded("renew-certificates", async () => {
		const now = options.now ?? platform.clock.now();
		const due = await claimRenewalSlot(platform, options.holder, now, options.renewIntervalMs);
		if (due.length === 0) {
			run.renewals = "not-due";
			return;
		}
		run.renewals = await renewDueCertificates(platform, {
			...options.renew,
			holder: options.holder,
			regions: due,
		});
		addMetrics(run.metrics, run.renewals.metrics);
	});
	await guarded("provisioning", async () => {
		await runDueJobs(platform, { holder: options.holder });
		await deliverDueNotifications(platform);
	});
	return run;
}

/**
 * Regions whose renewal sweep is due: a `schedule:` lease row per region whose expiry is the
 * next sweep time. Whoever takes it sweeps; everyone else (itself included) waits it out.
 */
async function claimRenewalSlot(
	platform: Platform,
	holder: string,
	now: Date,
	intervalMs = DEFAULT_RENEW_INTERVAL_MS,
): Promise<string[]> {
	const out: string[] = [];
	for (const region of platform.store.regions()) {
		const taken = await acquireLease(region.db, {
			name: leaseNames.schedule(RENEW_JOB),
			holder,
			now,
			ttlMs: intervalMs,
			reentrant: false,
		});
		if (taken.acquired) out.push(region.id);
	}
	return out;
}
