import { and, eq, gt, inArray, isNotNull, isNull, lte, ne, or, sql } from "drizzle-orm";
import { bumpRouteVersion } from "../../db/route-version";
import { type HealthState, instances, nodes } from "../../db/schema/region";
import type { RegionHandle } from "../../db/store";
import { appendAuditEvent, PLATFORM_CHAIN } from "../audit/audit-chain";
import type { Platform } from "../services/context";
import { tenantsAffectedBy } from "./affected-tenants";
import { type ApplyFailoverResult, applyPendingFailovers } from "./apply-failover";
import {
	createProber,
	type ProbeResult,
	type Prober,
	type ProbeTarget,
	type TcpConnect,
} from "./health-probe";
import { DEFAULT_THRESHOLDS, type HealthThresholds, nextHealth } from "./health-thresholds";
import type { JobMetrics } from "./job-metrics";
import { acquireLease, holdsLease, LostLeaseError, leaseNames } from "./leases";
import { runBounded } from "./run-bounded";

export const PROBE_JOB = "probe-nodes";
export const PROBE_ACTOR = "system:health";

export interface ProbeNodesOptions {
	/** Who runs: the job lease of each region is taken (and kept) in this name. */
	holder: string;
	/**
	 * "all": every node (the regular interval). "fast": only nodes the edge reported suspect or
	 * whose counters are on their way to a change, and not probed in the last `fastIntervalMs`.
	 */
	mode?: "all" | "fast";
	/** Minimum gap between two probes of one node (default 1 s; "all" spaces only when given). */
	fastIntervalMs?: number;
	thresholds?: Partial<HealthThresholds>;
	/** Probes in flight at once per region (default 32). */
	concurrency?: number;
	/** Per probe, when the default prober is used (default 2 s). */
	timeoutMs?: number;
	/** For nodes without a health URL; without it they are skipped, never marked down. */
	tcpConnect?: TcpConnect;
	/** Replaces the HTTP/TCP prober (tests, other runtimes). */
	prober?: Prober;
	/** Each probe starts after random() * jitterMs, spreading a cycle's load (default 0). */
	jitterMs?: number;
	random?: () => number;
	sleep?: (ms: number) => Promise<void>;
	/** The job lease's lifetime; the holder renews it every pass, so it only runs out on a crash. */
	leaseMs?: number;
	/** Rewrite DNS for nodes that changed, right after the change commits (default true). */
	applyFailover?: boolean;
	regions?: string[];
	/** Tests: called once a region's transaction committed (to crash a process there). */
	onRegionCommitted?: (regionId: string, transitions: NodeTransition[]) => void | Promise<void>;
}

export interface NodeTransition {
	nodeId: string;
	name: string;
	regionId: string;
	from: HealthState;
	to: "healthy" | "unhealthy";
	/** Tenants affected, homed in the node's region (the audit event names them). */
	tenants: string[];
	lastError?: string;
}

export interface ProbeNodesResult {
	probed: number;
	failed: number;
	skipped: number;
	transitions: NodeTransition[];
	/** Regions whose job lease another runner held: not probed by this one. */
	contendedRegions: string[];
	failover?: ApplyFailoverResult;
	metrics: Partial<JobMetrics>;
}

export const DEFAULT_PROBE_LEASE_MS = 60_000;
const DEFAULT_FAST_INTERVAL_MS = 1_000;

/**
 * One probe pass over each region's nodes, by the runner holding that region's probe lease.
 * Counters, probe times and every state change of a region are written in one transaction;
 * a change also bumps the route version (the edge drops or restores the node within its poll)
 * and is audited on the region's platform chain, naming the node and the affected tenants.
 */
export async function probeNodes(
	platform: Platform,
	options: ProbeNodesOptions,
): Promise<ProbeNodesResult> {
	const thresholds = { ...DEFAULT_THRESHOLDS, ...options.thresholds };
	const prober =
		options.prober ??
		createProber({
			...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
			...(options.tcpConnect ? { tcpConnect: options.tcpConnect } : {}),
		});
	const result: ProbeNodesResult = {
		probed: 0,
		failed: 0,
		skipped: 0,
		transitions: [],
		contendedRegions: [],
		metrics: {},
	};
	for (const region of platform.store.regions()) {
		if (options.regions && !options.regions.includes(region.id)) continue;
		const outcome = await probeRegion(platform, region, options, thresholds, prober);
		if (outcome === "contended") {
			result.contendedRegions.push(region.id);
			continue;
		}
		result.probed += outcome.probed;
		result.failed += outcome.failed;
		result.skipped += outcome.skipped;
		result.transitions.push(...outcome.transitions);
	}
	if (result.transitions.length > 0 && options.applyFailover !== false) {
		result.failover = await applyPendingFailovers(platform, {
			holder: options.holder,
			nodeIds: result.transitions.map((t) => t.nodeId),
		});
	}
	result.metrics = {
		health_probes_total: result.probed,
		health_probe_failures_total: result.failed,
		health_probes_skipped_total: result.skipped,
		node_state_changes_total: result.transitions.length,
		lease_contended_total: result.contendedRegions.length,
		...result.failover?.metrics,
	};
	return result;
}

type NodeRow = typeof nodes.$inferSelect;

async function probeRegion(
	platform: Platform,
	region: RegionHandle,
	options: ProbeNodesOptions,
	thresholds: HealthThresholds,
	prober: Prober,
): Promise<
	"contended" | { probed: number; failed: number; skipped: number; transitions: NodeTransition[] }
> {
	const started = platform.clock.now();
	const candidates = await selectNodes(region, options, started);
	// The fast pass runs every second: with nothing to do it only reads, it takes no lease.
	if (options.mode === "fast" && candidates.length === 0)
		return { probed: 0, failed: 0, skipped: 0, transitions: [] };
	const lease = leaseNames.job(PROBE_JOB);
	const taken = await acquireLease(region.db, {
		name: lease,
		holder: options.holder,
		now: started,
		ttlMs: options.leaseMs ?? DEFAULT_PROBE_LEASE_MS,
	});
	if (!taken.acquired) return "contended";
	if (candidates.length === 0) return { probed: 0, failed: 0, skipped: 0, transitions: [] };

	const targets = await probeTargets(region, candidates);
	const random = options.random ?? Math.random;
	const sleep = options.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
	const results = await runBounded(candidates, options.concurrency ?? 32, async (node) => {
		if (options.jitterMs) await sleep(random() * options.jitterMs);
		try {
			return await prober(targets.get(node.id)!);
		} catch (err) {
			return { ok: false, error: err instanceof Error ? err.message : String(err) } as ProbeResult;
		}
	});

	const changes: Array<{ node: NodeRow; to: "healthy" | "unhealthy"; lastError?: string }> = [];
	let failed = 0;
	let skipped = 0;
	const updates: Array<{ node: NodeRow; set: Partial<NodeRow> }> = [];
	candidates.forEach((node, i) => {
		const probe = results[i]!;
		if (probe.ok === "skipped") {
			skipped++;
			return;
		}
		if (!probe.ok) failed++;
		const step = nextHealth(node, probe.ok, thresholds);
		const lastError = probe.ok ? null : probe.error;
		updates.push({
			node,
			set: {
				consecutiveSuccesses: step.consecutiveSuccesses,
				consecutiveFailures: step.consecutiveFailures,
				lastProbeError: lastError,
			},
		});
		if (step.changedFrom !== undefined && step.state !== "unknown") {
			changes.push({ node, to: step.state, ...(lastError ? { lastError } : {}) });
		}
	});
	if (skipped > 0) {
		platform.logger.log("warn", "health: probes skipped", {
			region: region.id,
			skipped,
			reason: "no health URL and no TCP connect in this runtime",
		});
	}

	// Affected tenants are read before the transaction: they live in other regions' databases too.
	const affected = new Map<string, string[]>();
	for (const change of changes) {
		const list = await tenantsAffectedBy(platform, change.node);
		affected.set(
			change.node.id,
			list.filter((a) => a.home.id === region.id).map((a) => a.tenant.id),
		);
	}

	const transitions: NodeTransition[] = [];
	const now = platform.clock.now();
	await region.db.transaction(async (tx) => {
		if (!(await holdsLease(tx, { name: lease, holder: options.holder })))
			throw new LostLeaseError(lease);
		for (const { node, set } of updates) {
			await tx
				.update(nodes)
				.set({
					...set,
					lastProbeAt: now,
					// A suspect mark newer than this pass asks for another probe; older ones are answered.
					suspectAt: sql`case when ${nodes.suspectAt} <= ${started.getTime()} then null else ${nodes.suspectAt} end`,
				})
				.where(eq(nodes.id, node.id));
		}
		for (const change of changes) {
			const { node, to } = change;
			const [moved] = await tx
				.update(nodes)
				.set({
					state: to,
					stateChangedAt: now,
					updatedAt: now,
					// unknown and healthy are both routable: becoming healthy from unknown moves no DNS.
					...(node.state === "unknown" && to === "healthy" ? { dnsAppliedState: "healthy" } : {}),
				})
				.where(and(eq(nodes.id, node.id), eq(nodes.state, node.state)))
				.returning({ id: nodes.id });
			if (!moved) continue;
			const tenants = affected.get(node.id) ?? [];
			await appendAuditEvent(
				tx,
				{
					chain: PLATFORM_CHAIN,
					actor: PROBE_ACTOR,
					action: to === "unhealthy" ? "node.unhealthy" : "node.healthy",
					subject: node.id,
					data: {
						name: node.name,
						address: node.address,
						from: node.state,
						to,
						thresholds,
						...(change.lastError ? { lastError: change.lastError } : {}),
						tenants,
					},
				},
				{ clock: platform.clock },
			);
			transitions.push({
				nodeId: node.id,
				name: node.name,
				regionId: region.id,
				from: node.state,
				to,
				tenants,
				...(change.lastError ? { lastError: change.lastError } : {}),
			});
		}
		if (transitions.length > 0) await bumpRouteVersion(tx, now);
	});
	for (const t of transitions) {
		platform.logger.log(t.to === "unhealthy" ? "error" : "info", `health: node ${t.to}`, {
			alert: t.to === "unhealthy" ? "node_unhealthy" : undefined,
			node: t.nodeId,
			name: t.name,
			region: t.regionId,
			from: t.from,
			lastError: t.lastError,
		});
	}
	await options.onRegionCommitted?.(region.id, transitions);
	return { probed: updates.length, failed, skipped, transitions };
}

async function selectNodes(
	region: RegionHandle,
	options: ProbeNodesOptions,
	now: Date,
): Promise<NodeRow[]> {
	const recent = new Date(now.getTime() - (options.fastIntervalMs ?? DEFAULT_FAST_INTERVAL_MS));
	if (options.mode !== "fast") {
		// With a fast interval given (the Node host), the regular pass keeps the same spacing.
		const spaced =
			options.fastIntervalMs === undefined
				? undefined
				: or(isNull(nodes.lastProbeAt), lte(nodes.lastProbeAt, recent));
		return region.db.select().from(nodes).where(spaced).orderBy(nodes.id);
	}
	return region.db
		.select()
		.from(nodes)
		.where(
			and(
				// Probes of one node stay `fastIntervalMs` apart, however often the edge reports it:
				// the fall threshold then spans time, and a blip shorter than that flips nothing.
				or(isNull(nodes.lastProbeAt), lte(nodes.lastProbeAt, recent)),
				or(
					isNotNull(nodes.suspectAt),
					and(gt(nodes.consecutiveFailures, 0), ne(nodes.state, "unhealthy")),
					and(gt(nodes.consecutiveSuccesses, 0), ne(nodes.state, "healthy")),
				),
			),
		)
		.orderBy(nodes.id);
}

async function probeTargets(
	region: RegionHandle,
	list: NodeRow[],
): Promise<Map<string, ProbeTarget>> {
	const out = new Map<string, ProbeTarget>(
		list.map((n) => [n.id, { nodeId: n.id, healthUrl: n.healthUrl, instanceUrls: [] }]),
	);
	// Instances matter only for the TCP probe of nodes without a health URL.
	const tcpNodes = list.filter((n) => !n.healthUrl).map((n) => n.id);
	for (let i = 0; i < tcpNodes.length; i += 500) {
		const rows = await region.db
			.select({ nodeId: instances.nodeId, url: instances.url })
			.from(instances)
			.where(inArray(instances.nodeId, tcpNodes.slice(i, i + 500)))
			.orderBy(instances.id);
		for (const row of rows) out.get(row.nodeId)?.instanceUrls.push(row.url);
	}
	return out;
}
