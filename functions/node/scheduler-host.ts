import { connect } from "node:net";
import { applyPendingFailovers } from "../jobs/apply-failover";
import type { TcpConnect } from "../jobs/health-probe";
import type { HealthThresholds } from "../jobs/health-thresholds";
import { addMetrics, emptyMetrics, type JobMetrics } from "../jobs/job-metrics";
import { leaseNames, releaseLease } from "../jobs/leases";
import { markSuspect } from "../jobs/mark-suspect";
import { PROBE_JOB, probeNodes } from "../jobs/probe-nodes";
import { renewDueCertificates } from "../jobs/renew-due-certificates";
import type { Platform } from "../services/context";

export interface SchedulerHostOptions {
	/** Stable across restarts of this node, so it resumes its own leases at once. */
	holder: string;
	/** Every node is probed this often (default 10 s), give or take 10 % of jitter. */
	probeIntervalMs?: number;
	/** Suspect nodes and nodes on their way to a change are re-probed this often (default 1 s). */
	fastProbeIntervalMs?: number;
	/** The renewal sweep (default every 5 min; it reads only what is due). */
	renewIntervalMs?: number;
	probeTimeoutMs?: number;
	probeConcurrency?: number;
	renewConcurrency?: number;
	thresholds?: Partial<HealthThresholds>;
	tcpConnect?: TcpConnect;
	random?: () => number;
}

export interface SchedulerHost {
	/** Runs a full pass (probes, pending failovers, renewals) now instead of at the next tick. */
	kick(): void;
	/**
	 * The edge's passive signal (`onInstanceSuspect`): marks the instance's node suspect and
	 * probes it at once. Signals for an instance already being answered are dropped.
	 */
	suspect(instanceId: string): void;
	/** Counters added up since start. */
	metrics(): JobMetrics;
	/** Stops the timers, waits for running passes and gives this node's job leases back. */
	stop(): Promise<void>;
}

/**
 * The Node host of the scheduled jobs (`castellan start`): the same job functions a Workers cron
 * calls through `runScheduledJobs`, on intervals. Probes and renewals run on separate chains, so
 * a slow CA never delays a failover; each chain runs one pass at a time.
 */
export function startScheduler(platform: Platform, options: SchedulerHostOptions): SchedulerHost {
	const interval = options.probeIntervalMs ?? 10_000;
	const fastInterval = Math.min(options.fastProbeIntervalMs ?? 1_000, interval);
	const renewInterval = options.renewIntervalMs ?? 5 * 60_000;
	const random = options.random ?? Math.random;
	const tcpConnect = options.tcpConnect ?? nodeTcpConnect;
	const totals = emptyMetrics();
	let stopped = false;

	const probeOptions = {
		holder: options.holder,
		tcpConnect,
		random,
		fastIntervalMs: fastInterval,
		// The lease outlives a few missed passes, not more: a dead leader is replaced within ~3 intervals.
		leaseMs: Math.max(3 * interval, 5_000),
		...(options.thresholds ? { thresholds: options.thresholds } : {}),
		...(options.probeTimeoutMs !== undefined ? { timeoutMs: options.probeTimeoutMs } : {}),
		...(options.probeConcurrency !== undefined ? { concurrency: options.probeConcurrency } : {}),
	};
	const logFailure = (job: string) => (err: unknown) =>
		platform.logger.log("error", "scheduled job failed", {
			job,
			error: err instanceof Error ? err.message : String(err),
		});

	const probes = serial(async (mode: "all" | "fast") => {
		const result = await probeNodes(platform, { ...probeOptions, mode });
		addMetrics(totals, result.metrics);
		if (mode === "all") {
			// Failovers left pending by a crash or an error are finished on the regular interval.
			const left = await applyPendingFailovers(platform, { holder: options.holder });
			addMetrics(totals, left.metrics);
		}
	}, logFailure("probe-nodes"));
	const renewals = serial(async () => {
		const result = await renewDueCertificates(platform, {
			holder: options.holder,
			random,
			...(options.renewConcurrency !== undefined ? { concurrency: options.renewConcurrency } : {}),
		});
		addMetrics(totals, result.metrics);
	}, logFailure("renew-certificates"));

	let probeTimer: ReturnType<typeof setTimeout> | undefined;
	const scheduleProbe = () => {
		if (stopped) return;
		// Jitter keeps many runners and their probes from falling into lockstep.
		const wait = Math.round(interval * (0.9 + 0.2 * random()));
		probeTimer = setTimeout(() => {
			probes.run("all").finally(scheduleProbe);
		}, wait);
		probeTimer.unref();
	};
	const fastTimer = setInterval(() => probes.run("fast"), fastInterval);
	fastTimer.unref();
	const renewTimer = setInterval(() => renewals.run(undefined), renewInterval);
	renewTimer.unref();

	// Instances whose signal is being answered: an edge under load repeats a failure many times.
	const answering = new Set<string>();
	const kick = () => {
		if (stopped) return;
		void probes.run("all");
		void renewals.run(undefined);
	};
	kick();
	scheduleProbe();

	return {
		kick,
		suspect(instanceId) {
			if (stopped || answering.has(instanceId)) return;
			answering.add(instanceId);
			markSuspect(platform, instanceId)
				.then((found) => {
					if (found) return probes.run("fast");
				})
				.catch(logFailure("mark-suspect"))
				.finally(() => answering.delete(instanceId));
		},
		metrics: () => ({ ...totals }),
		async stop() {
			stopped = true;
			clearTimeout(probeTimer);
			clearInterval(fastTimer);
			clearInterval(renewTimer);
			await Promise.all([probes.idle(), renewals.idle()]);
			// Another node takes over at once instead of after the lease runs out.
			for (const region of platform.store.regions()) {
				await releaseLease(region.db, {
					name: leaseNames.job(PROBE_JOB),
					holder: options.holder,
				}).catch(logFailure("release-lease"));
			}
		},
	};
}

/**
 * One pass at a time. A request while a pass runs is remembered (once per argument) and run
 * after it, so a kick or a suspect signal is never lost and never runs two passes at once.
 */
function serial<A>(work: (arg: A) => Promise<void>, onError: (err: unknown) => void) {
	let running: Promise<void> | undefined;
	const queued: A[] = [];
	const loop = async () => {
		while (queued.length > 0) await work(queued.shift() as A).catch(onError);
	};
	const start = () => {
		running = loop().finally(() => {
			running = undefined;
			// A request that arrived as the loop was finishing.
			if (queued.length > 0) start();
		});
	};
	return {
		run(arg: A): Promise<void> {
			if (!queued.includes(arg)) queued.push(arg);
			if (!running) start();
			return running ?? Promise.resolve();
		},
		idle: () => running ?? Promise.resolve(),
	};
}

/** TCP connect with a timeout, for nodes without a health URL. */
export const nodeTcpConnect: TcpConnect = (host, port, timeoutMs) =>
	new Promise((resolve, reject) => {
		const socket = connect({ host, port });
		const timer = setTimeout(() => {
			socket.destroy();
			reject(new Error(`no connection within ${timeoutMs} ms`));
		}, timeoutMs);
		socket.once("connect", () => {
			clearTimeout(timer);
			socket.destroy();
			resolve();
		});
		socket.once("error", (err) => {
			clearTimeout(timer);
			socket.destroy();
			reject(err);
		});
	});
