import { and, eq, inArray } from "drizzle-orm";
import { dnsRecords } from "../../db/schema/region";
import { appendAuditEvent } from "../audit/audit-chain";
import type { DnsRecordType } from "../providers/types";
import { newId } from "../runtime";
import type { Platform } from "../services/context";
import { residentTargets } from "../services/residency-targets";
import { tenantProvider } from "../services/tenant-providers";
import { type AffectedTenant, residencyRegions } from "./affected-tenants";
import { acquireLease, holdsLease, LostLeaseError, leaseNames, releaseLease } from "./leases";

/** What set off a DNS rewrite, recorded in the tenant's audit event. */
export interface FailoverCause {
	nodeId: string;
	nodeName: string;
	nodeRegion: string;
	/** The node's new state. */
	state: "healthy" | "unhealthy";
}

export type TenantDnsOutcome =
	| { tenantId: string; kind: "changed"; regionId: string; ipv4: string[]; ipv6: string[] }
	| { tenantId: string; kind: "unchanged" }
	/** No eligible node left inside residency: records kept as they were, alert raised. */
	| { tenantId: string; kind: "fail_static"; kept: Record<string, string[]> }
	/** The tenant has no A/AAAA records (not provisioned yet, or being removed). */
	| { tenantId: string; kind: "no_records" }
	/** Another runner is rewriting this tenant's records right now; try again later. */
	| { tenantId: string; kind: "busy" }
	| { tenantId: string; kind: "error"; error: string };

const ADDRESS_TYPES: DnsRecordType[] = ["A", "AAAA"];
const TENANT_DNS_LEASE_MS = 120_000;

/**
 * Points a tenant's A/AAAA records at the eligible nodes of its residency: the first region in
 * failover order that has any (home, then backups), never a region outside it. With none left
 * the records stay as they are (fail static: the edge answers 503 meanwhile) and an alert is
 * raised. The provider is written first, then the rows and the audit event in one transaction;
 * `force` rewrites the provider even when the rows already match (a previous run may have died
 * between the two).
 */
export async function syncTenantDns(
	platform: Platform,
	affected: AffectedTenant,
	options: { holder: string; actor: string; cause: FailoverCause; force?: boolean },
): Promise<TenantDnsOutcome> {
	const { tenant, home } = affected;
	const lease = leaseNames.tenantDns(tenant.id);
	const taken = await acquireLease(home.db, {
		name: lease,
		holder: options.holder,
		now: platform.clock.now(),
		ttlMs: TENANT_DNS_LEASE_MS,
	});
	if (!taken.acquired) return { tenantId: tenant.id, kind: "busy" };
	try {
		return await rewrite(platform, affected, { ...options, force: options.force || taken.resumed });
	} catch (err) {
		const error = err instanceof Error ? err.message : String(err);
		platform.logger.log("error", "failover: cannot rewrite tenant DNS; will retry", {
			tenant: tenant.id,
			node: options.cause.nodeId,
			error,
		});
		return { tenantId: tenant.id, kind: "error", error };
	} finally {
		await releaseLease(home.db, { name: lease, holder: options.holder });
	}
}

async function rewrite(
	platform: Platform,
	{ tenant, home }: AffectedTenant,
	options: { holder: string; actor: string; cause: FailoverCause; force: boolean },
): Promise<TenantDnsOutcome> {
	const rows = await home.db
		.select()
		.from(dnsRecords)
		.where(and(eq(dnsRecords.tenantId, tenant.id), inArray(dnsRecords.type, ADDRESS_TYPES)));
	if (rows.length === 0) return { tenantId: tenant.id, kind: "no_records" };

	const regions = residencyRegions(platform, tenant);
	const targets = await residentTargets(platform, { id: tenant.id, allowedRegions: regions });
	const current = (name: string, type: DnsRecordType) =>
		rows.find((r) => r.name === name && r.type === type);
	const names = [...new Set(rows.map((r) => r.name))].sort();

	if (!targets) {
		const kept = Object.fromEntries(rows.map((r) => [`${r.name} ${r.type}`, r.values]));
		platform.logger.log("error", "failover: no healthy node left inside the tenant's residency", {
			alert: "dns_fail_static",
			tenant: tenant.id,
			regions,
			node: options.cause.nodeId,
			kept,
		});
		await home.db.transaction(async (tx) => {
			await appendAuditEvent(
				tx,
				{
					chain: tenant.id,
					actor: options.actor,
					action: "dns.fail_static",
					subject: tenant.id,
					data: { ...causeData(options.cause), regions, kept },
				},
				{ clock: platform.clock },
			);
		});
		return { tenantId: tenant.id, kind: "fail_static", kept };
	}

	const desired: Record<DnsRecordType, string[]> = {
		A: targets.ipv4,
		AAAA: targets.ipv6,
		CNAME: [],
		TXT: [],
	};
	const changes: Array<{ name: string; type: DnsRecordType; before: string[]; after: string[] }> =
		[];
	for (const name of names) {
		for (const type of ADDRESS_TYPES) {
			const before = current(name, type)?.values ?? [];
			const after = desired[type];
			if (!sameSet(before, after)) changes.push({ name, type, before, after });
		}
	}
	if (changes.length === 0 && !options.force) return { tenantId: tenant.id, kind: "unchanged" };

	// The tenant's own DNS provider when it has one, else its profile's: where provisioning wrote.
	const bound = await tenantProvider(platform, home, tenant, "dns");
	if (!bound) throw new Error(`tenant ${tenant.id} has DNS records but no DNS provider any more`);
	const { name: providerName, provider } = bound;
	const ttlOf = (name: string) =>
		current(name, "A")?.ttl ?? current(name, "AAAA")?.ttl ?? rows[0]!.ttl;
	for (const name of names) {
		for (const type of ADDRESS_TYPES) {
			const values = desired[type];
			if (values.length > 0) await provider.upsert({ name, type, ttl: ttlOf(name), values });
			else await provider.remove(name, type);
		}
	}
	if (changes.length === 0) return { tenantId: tenant.id, kind: "unchanged" };

	const now = platform.clock.now();
	await home.db.transaction(async (tx) => {
		if (!(await holdsLease(tx, { name: leaseNames.tenantDns(tenant.id), holder: options.holder })))
			throw new LostLeaseError(leaseNames.tenantDns(tenant.id));
		for (const change of changes) {
			if (change.after.length === 0) {
				await tx
					.delete(dnsRecords)
					.where(and(eq(dnsRecords.name, change.name), eq(dnsRecords.type, change.type)));
				continue;
			}
			await tx
				.insert(dnsRecords)
				.values({
					id: newId("dns"),
					tenantId: tenant.id,
					name: change.name,
					type: change.type,
					values: change.after,
					ttl: ttlOf(change.name),
					provider: providerName,
					updatedAt: now,
				})
				.onConflictDoUpdate({
					target: [dnsRecords.name, dnsRecords.type],
					set: { values: change.after, provider: providerName, updatedAt: now },
				});
		}
		await appendAuditEvent(
			tx,
			{
				chain: tenant.id,
				actor: options.actor,
				action: options.cause.state === "unhealthy" ? "dns.failover" : "dns.recovery",
				subject: tenant.id,
				data: {
					...causeData(options.cause),
					provider: providerName,
					region: targets.regionId,
					changes: changes.map((c) => ({
						name: c.name,
						type: c.type,
						before: c.before,
						after: c.after,
					})),
				},
			},
			{ clock: platform.clock },
		);
	});
	platform.logger.log("info", "failover: tenant DNS rewritten", {
		tenant: tenant.id,
		node: options.cause.nodeId,
		state: options.cause.state,
		region: targets.regionId,
		ipv4: targets.ipv4,
		ipv6: targets.ipv6,
	});
	return {
		tenantId: tenant.id,
		kind: "changed",
		regionId: targets.regionId,
		ipv4: targets.ipv4,
		ipv6: targets.ipv6,
	};
}

function causeData(cause: FailoverCause): Record<string, unknown> {
	return {
		node: cause.nodeId,
		nodeName: cause.nodeName,
		nodeRegion: cause.nodeRegion,
		nodeState: cause.state,
	};
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
	if (a.length !== b.length) return false;
	const set = new Set(a);
	return b.every((v) => set.has(v));
}
