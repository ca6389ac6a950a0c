import { and, eq, inArray, isNull, ne, or } from "drizzle-orm";
import { nodes } from "../../db/schema/region";
import type { RegionHandle } from "../../db/store";
import { appendAuditEvent, PLATFORM_CHAIN } from "../audit/audit-chain";
import type { Platform } from "../services/context";
import { tenantsAffectedBy } from "./affected-tenants";
import type { JobMetrics } from "./job-metrics";
import { acquireLease, holdsLease, leaseNames, releaseLease } from "./leases";
import { type FailoverCause, syncTenantDns, type TenantDnsOutcome } from "./tenant-dns";

export interface ApplyFailoverOptions {
	holder: string;
	/** Only these nodes (the ones a probe pass just changed); default every pending node. */
	nodeIds?: string[];
	/** How long one node's failover may take before another runner may take it over. */
	leaseMs?: number;
	/** Tests: called after each tenant's DNS has been handled (to crash a process there). */
	onTenantDone?: (nodeId: string, outcome: TenantDnsOutcome) => void | Promise<void>;
}

export interface AppliedFailover {
	nodeId: string;
	regionId: string;
	state: "healthy" | "unhealthy";
	/** False when some tenant could not be handled yet (busy or an error): retried next pass. */
	complete: boolean;
	tenants: TenantDnsOutcome[];
}

export interface ApplyFailoverResult {
	applied: AppliedFailover[];
	/** Pending nodes another runner was working on. */
	contended: number;
	metrics: Partial<JobMetrics>;
}

export const FAILOVER_ACTOR = "system:failover";
const DEFAULT_LEASE_MS = 5 * 60_000;

/**
 * Finishes every pending failover: a node whose health changed (state differs from the state
 * its DNS was last applied for) gets each affected tenant's records rewritten, then is marked
 * applied. One runner per node through a lease; a node is marked applied only when every
 * tenant is done, so a crash or an error part-way is finished by the next pass, once.
 */
export async function applyPendingFailovers(
	platform: Platform,
	options: ApplyFailoverOptions,
): Promise<ApplyFailoverResult> {
	const result: ApplyFailoverResult = { applied: [], contended: 0, metrics: {} };
	const metrics = {
		dns_failover_changes_total: 0,
		dns_fail_static_total: 0,
		dns_failover_errors_total: 0,
		lease_contended_total: 0,
	};
	for (const region of platform.store.regions()) {
		const pending = await region.db
			.select()
			.from(nodes)
			.where(
				and(
					inArray(nodes.state, ["healthy", "unhealthy"]),
					or(isNull(nodes.dnsAppliedState), ne(nodes.dnsAppliedState, nodes.state)),
					options.nodeIds ? inArray(nodes.id, options.nodeIds) : undefined,
				),
			)
			.orderBy(nodes.stateChangedAt, nodes.id);
		for (const node of pending) {
			const applied = await applyOne(platform, region, node, options);
			if (applied === "done-already") continue;
			if (applied === "contended") {
				result.contended++;
				metrics.lease_contended_total++;
				continue;
			}
			result.applied.push(applied);
			for (const t of applied.tenants) {
				if (t.kind === "changed") metrics.dns_failover_changes_total++;
				if (t.kind === "fail_static") metrics.dns_fail_static_total++;
				if (t.kind === "error") metrics.dns_failover_errors_total++;
			}
		}
	}
	result.metrics = metrics;
	return result;
}

type NodeRow = typeof nodes.$inferSelect;

async function applyOne(
	platform: Platform,
	region: RegionHandle,
	node: NodeRow,
	options: ApplyFailoverOptions,
): Promise<AppliedFailover | "contended" | "done-already"> {
	const lease = leaseNames.failover(node.id);
	const taken = await acquireLease(region.db, {
		name: lease,
		holder: options.holder,
		now: platform.clock.now(),
		ttlMs: options.leaseMs ?? DEFAULT_LEASE_MS,
	});
	if (!taken.acquired) return "contended";
	try {
		// Re-read under the lease: another runner may have finished it since the query above.
		const [fresh] = await region.db.select().from(nodes).where(eq(nodes.id, node.id)).limit(1);
		if (
			!fresh ||
			(fresh.state !== "healthy" && fresh.state !== "unhealthy") ||
			fresh.dnsAppliedState === fresh.state
		) {
			return "done-already";
		}
		const state = fresh.state;
		const cause: FailoverCause = {
			nodeId: fresh.id,
			nodeName: fresh.name,
			nodeRegion: region.id,
			state,
		};
		const outcomes: TenantDnsOutcome[] = [];
		const homes = new Map<string, string>();
		for (const affected of await tenantsAffectedBy(platform, fresh)) {
			homes.set(affected.tenant.id, affected.home.id);
			const outcome = await syncTenantDns(platform, affected, {
				holder: options.holder,
				actor: FAILOVER_ACTOR,
				cause,
				// A lease left behind means a runner died mid-way: rewrite what it may have half-done.
				force: taken.resumed,
			});
			outcomes.push(outcome);
			await options.onTenantDone?.(fresh.id, outcome);
		}
		const complete = outcomes.every((o) => o.kind !== "busy" && o.kind !== "error");
		if (complete) {
			await region.db.transaction(async (tx) => {
				if (!(await holdsLease(tx, { name: lease, holder: options.holder }))) return;
				const [marked] = await tx
					.update(nodes)
					.set({ dnsAppliedState: state })
					// Only for the state we applied: if it flipped meanwhile, the node stays pending.
					.where(and(eq(nodes.id, fresh.id), eq(nodes.state, state)))
					.returning({ id: nodes.id });
				if (!marked) return;
				await appendAuditEvent(
					tx,
					{
						chain: PLATFORM_CHAIN,
						actor: FAILOVER_ACTOR,
						action: state === "unhealthy" ? "failover.applied" : "recovery.applied",
						subject: fresh.id,
						data: {
							name: fresh.name,
							address: fresh.address,
							state,
							...summarize(region.id, outcomes, homes),
						},
					},
					{ clock: platform.clock },
				);
			});
		}
		return { nodeId: fresh.id, regionId: region.id, state, complete, tenants: outcomes };
	} finally {
		await releaseLease(region.db, { name: lease, holder: options.holder });
	}
}

/**
 * What the platform chain of the node's region may say about tenants: ids of tenants homed in
 * this region, and only counts for tenants homed elsewhere (their ids stay in their own region).
 */
function summarize(
	regionId: string,
	outcomes: TenantDnsOutcome[],
	homes: ReadonlyMap<string, string>,
): Record<string, unknown> {
	const outcomeCounts: Record<string, number> = {};
	const tenants: Array<{ tenant: string; outcome: string }> = [];
	const elsewhere: Record<string, number> = {};
	for (const o of outcomes) {
		outcomeCounts[o.kind] = (outcomeCounts[o.kind] ?? 0) + 1;
		const home = homes.get(o.tenantId) ?? regionId;
		if (home === regionId) tenants.push({ tenant: o.tenantId, outcome: o.kind });
		else elsewhere[home] = (elsewhere[home] ?? 0) + 1;
	}
	return { outcomes: outcomeCounts, tenants, tenantsHomedElsewhere: elsewhere };
}
