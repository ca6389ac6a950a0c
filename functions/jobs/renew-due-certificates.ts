import { and, asc, eq, lte, ne } from "drizzle-orm";
import type { RegionDb } from "../../db/client";
import { bumpRouteVersion } from "../../db/route-version";
import { certificates, routes, tenants } from "../../db/schema/region";
import type { RegionHandle } from "../../db/store";
import { appendAuditEvent } from "../audit/audit-chain";
import type { CertificateIssuer, RenewalWindow } from "../providers/types";
import { newId } from "../runtime";
import { certificateKeyBinding } from "../secrets/bindings";
import type { Platform } from "../services/context";
import { tenantProvider } from "../services/tenant-providers";
import type { JobMetrics } from "./job-metrics";
import { acquireLease, holdsLease, LostLeaseError, leaseNames, releaseLease } from "./leases";
import {
	DAY_MS,
	DEFAULT_ARI_POLL_MS,
	decideByWindow,
	EXPIRY_ALERT_MS,
	oneThirdRemainingAt,
	renewalBackoffMs,
} from "./renewal-policy";
import { runBounded } from "./run-bounded";

export const RENEW_JOB = "renew-certificates";
export const RENEW_ACTOR = "system:renewal";

export type RenewalScope =
	/** What is due now: a third of the lifetime left, the ARI window, or a backoff that ran out. */
	| { kind: "due" }
	/** Every active certificate, due or not (`castellan cert renew --all`). */
	| { kind: "all" }
	/** Every active certificate of one tenant, due or not. */
	| { kind: "tenant"; tenantId: string };

type CertificateRow = typeof certificates.$inferSelect;

export interface RenewOptions {
	/** Who runs: recorded on each certificate's lease, so two runners never renew one certificate. */
	holder: string;
	scope?: RenewalScope;
	/** Renewals in flight at once (default 4: CAs rate-limit, and each one is several round trips). */
	concurrency?: number;
	/** Most certificates one sweep takes per region (default 1000); the rest wait for the next sweep. */
	batchSize?: number;
	random?: () => number;
	/** A certificate's lease; long enough for the slowest issuance (DNS-01 propagation + validation). */
	leaseMs?: number;
	/** How often certificates of an ARI-capable issuer ask the CA again (default 6 h). */
	ariPollMs?: number;
	regions?: string[];
	onProgress?: (progress: { done: number; total: number; outcome: RenewalOutcome }) => void;
	/** Tests: called after the CA issued and before the new certificate is stored (to crash there). */
	afterIssue?: (certificateId: string) => void | Promise<void>;
	/** Tests: called after the new certificate is stored, before the lease is given back. */
	afterStore?: (certificateId: string) => void | Promise<void>;
}

export interface RenewalOutcome {
	certificateId: string;
	tenantId: string;
	hostname: string;
	regionId: string;
	result:
		| "renewed"
		/** The renewal failed; backs off until `nextAttemptAt`; the old certificate keeps serving. */
		| "failed"
		/** The CA's ARI window has not begun: looks again at `nextAttemptAt`. */
		| "deferred"
		/** Another runner holds this certificate's lease. */
		| "busy"
		/** Nothing to do any more (renewed or revoked meanwhile, tenant deleted). */
		| "skipped";
	newCertificateId?: string;
	reason?: string;
	error?: string;
	nextAttemptAt?: Date;
	/** Within 7 days of expiry and failing: an alert was raised. */
	alert?: boolean;
}

export interface RenewResult {
	outcomes: RenewalOutcome[];
	renewed: number;
	failed: number;
	deferred: number;
	busy: number;
	alerts: number;
	metrics: Partial<JobMetrics>;
}

const DEFAULT_LEASE_MS = 10 * 60_000;

/**
 * The renewal sweep. Reads only what is due (`status = 'active' and renewal_due_at <= now`,
 * an index range), renews each certificate under its own lease, and stores the new certificate,
 * supersedes the old one and points the routes at the new one in one transaction: the old one
 * serves until then. Failures back off (persisted, capped); near expiry they raise an alert.
 */
export async function renewDueCertificates(
	platform: Platform,
	options: RenewOptions,
): Promise<RenewResult> {
	const scope = options.scope ?? { kind: "due" };
	const work: Array<{ region: RegionHandle; id: string }> = [];
	const regions = await regionsFor(platform, scope);
	for (const region of regions) {
		if (options.regions && !options.regions.includes(region.id)) continue;
		const ids = await selectCertificates(region, scope, platform.clock.now(), options.batchSize);
		for (const id of ids) work.push({ region, id });
	}
	let done = 0;
	const outcomes = await runBounded(work, options.concurrency ?? 4, async ({ region, id }) => {
		const outcome = await renewOne(platform, region, id, scope, options);
		done++;
		options.onProgress?.({ done, total: work.length, outcome });
		return outcome;
	});
	const count = (r: RenewalOutcome["result"]) => outcomes.filter((o) => o.result === r).length;
	const alerts = outcomes.filter((o) => o.alert).length;
	return {
		outcomes,
		renewed: count("renewed"),
		failed: count("failed"),
		deferred: count("deferred"),
		busy: count("busy"),
		alerts,
		metrics: {
			certificate_renewals_total: count("renewed"),
			certificate_renewal_failures_total: count("failed"),
			certificate_expiry_alerts_total: alerts,
			lease_contended_total: count("busy"),
		},
	};
}

async function regionsFor(platform: Platform, scope: RenewalScope): Promise<RegionHandle[]> {
	if (scope.kind !== "tenant") return platform.store.regions();
	const home = await platform.store.locateTenant(scope.tenantId);
	return home ? [home] : [];
}

async function selectCertificates(
	region: RegionHandle,
	scope: RenewalScope,
	now: Date,
	batchSize = 1000,
): Promise<string[]> {
	const rows = await certificatesInScope(region.db, scope, now, batchSize);
	return rows.map((r) => r.id);
}

/**
 * The sweep's query. For "due" it is a range on the (status, renewal_due_at) index: what it
 * reads grows with what is due, not with the number of certificates.
 */
export function certificatesInScope(
	db: RegionDb,
	scope: RenewalScope,
	now: Date,
	batchSize = 1000,
) {
	const where =
		scope.kind === "due"
			? and(eq(certificates.status, "active"), lte(certificates.renewalDueAt, now))
			: scope.kind === "tenant"
				? and(eq(certificates.status, "active"), eq(certificates.tenantId, scope.tenantId))
				: eq(certificates.status, "active");
	return db
		.select({ id: certificates.id })
		.from(certificates)
		.where(where)
		.orderBy(asc(certificates.renewalDueAt))
		.limit(batchSize);
}

async function renewOne(
	platform: Platform,
	region: RegionHandle,
	id: string,
	scope: RenewalScope,
	options: RenewOptions,
): Promise<RenewalOutcome> {
	const lease = leaseNames.certificate(id);
	const taken = await acquireLease(region.db, {
		name: lease,
		holder: options.holder,
		now: platform.clock.now(),
		ttlMs: options.leaseMs ?? DEFAULT_LEASE_MS,
	});
	if (!taken.acquired) {
		return { certificateId: id, tenantId: "", hostname: "", regionId: region.id, result: "busy" };
	}
	try {
		// Re-read under the lease: another runner may have renewed it since the sweep's query.
		const [cert] = await region.db.select().from(certificates).where(eq(certificates.id, id));
		const base = {
			certificateId: id,
			tenantId: cert?.tenantId ?? "",
			hostname: cert?.hostname ?? "",
			regionId: region.id,
		};
		const now = platform.clock.now();
		if (cert?.status !== "active") return { ...base, result: "skipped", reason: "not active" };
		if (scope.kind === "due" && cert.renewalDueAt && cert.renewalDueAt.getTime() > now.getTime())
			return { ...base, result: "skipped", reason: "no longer due" };
		return await attempt(platform, region, cert, scope, options, base);
	} finally {
		await releaseLease(region.db, { name: lease, holder: options.holder });
	}
}

async function attempt(
	platform: Platform,
	region: RegionHandle,
	cert: CertificateRow,
	scope: RenewalScope,
	options: RenewOptions,
	base: Pick<RenewalOutcome, "certificateId" | "tenantId" | "hostname" | "regionId">,
): Promise<RenewalOutcome> {
	const random = options.random ?? Math.random;
	const pollMs = options.ariPollMs ?? DEFAULT_ARI_POLL_MS;
	const [tenant] = await region.db.select().from(tenants).where(eq(tenants.id, cert.tenantId));
	if (!tenant || tenant.status === "deleted") {
		// The deprovisioning job revokes it; look again in a day rather than on every sweep.
		await setNextRenewal(region, cert.id, new Date(platform.clock.now().getTime() + DAY_MS));
		return { ...base, result: "skipped", reason: "tenant deleted" };
	}
	let issuerName = cert.issuer;
	let reason = scope.kind === "due" ? "one-third-lifetime" : `manual:${scope.kind}`;
	try {
		// The tenant's own issuer when it has one, else its profile's (as provisioning chose).
		const bound = await tenantProvider(platform, region, tenant, "issuer");
		if (!bound) return await customerCertificate(platform, region, cert, base);
		issuerName = bound.name;
		const issuer = bound.provider;
		if (scope.kind === "due" && issuer.renewalWindow) {
			const decision = await consultAri(platform, issuer, cert, random, pollMs);
			if (decision.kind === "defer") {
				await setNextRenewal(region, cert.id, decision.next);
				return {
					...base,
					result: "deferred",
					reason: decision.reason,
					nextAttemptAt: decision.next,
				};
			}
			reason = decision.reason;
		} else if (
			scope.kind === "due" &&
			oneThirdRemainingAt(cert).getTime() > platform.clock.now().getTime()
		) {
			// Due through a time set for another issuer (ARI polling): back to the one-third rule.
			await setNextRenewal(region, cert.id, null);
			return { ...base, result: "skipped", reason: "not due by the one-third rule" };
		}
		const issued = await issuer.issue({
			tenantId: tenant.id,
			regionId: region.id,
			hostnames: [cert.hostname],
		});
		await options.afterIssue?.(cert.id);
		const renewedId = newId("crt");
		const sealed = await platform.secrets.seal(
			issued.privateKeyPem,
			certificateKeyBinding(tenant.id, renewedId),
		);
		const now = platform.clock.now();
		const stored = await region.db.transaction(async (tx) => {
			const lease = leaseNames.certificate(cert.id);
			if (!(await holdsLease(tx, { name: lease, holder: options.holder })))
				throw new LostLeaseError(lease);
			// Compare-and-set on the old row: if it is no longer active, someone else replaced it.
			const [superseded] = await tx
				.update(certificates)
				.set({ status: "superseded" })
				.where(and(eq(certificates.id, cert.id), eq(certificates.status, "active")))
				.returning({ id: certificates.id });
			if (!superseded) return false;
			await tx.insert(certificates).values({
				id: renewedId,
				tenantId: tenant.id,
				hostname: cert.hostname,
				issuer: issuerName,
				serial: issued.serial,
				chainPem: issued.chainPem,
				privateKeyCiphertext: sealed,
				notBefore: issued.notBefore,
				notAfter: issued.notAfter,
				status: "active",
				createdAt: now,
				// An ARI-capable CA is asked again regularly; others renew at one third remaining.
				nextRenewalAt: issuer.renewalWindow ? new Date(now.getTime() + pollMs) : null,
			});
			// Same pattern as issuance: any other active certificate of the name is superseded too.
			await tx
				.update(certificates)
				.set({ status: "superseded" })
				.where(
					and(
						eq(certificates.tenantId, tenant.id),
						eq(certificates.hostname, cert.hostname),
						eq(certificates.status, "active"),
						ne(certificates.id, renewedId),
					),
				);
			await tx
				.update(routes)
				.set({ certificateId: renewedId, updatedAt: now })
				.where(and(eq(routes.tenantId, tenant.id), eq(routes.hostname, cert.hostname)));
			// The edge reloads routes and certificates when the version moves: the swap is at once.
			await bumpRouteVersion(tx, now);
			await appendAuditEvent(
				tx,
				{
					chain: tenant.id,
					actor: RENEW_ACTOR,
					action: "certificate.renewed",
					subject: cert.hostname,
					data: {
						certificateId: renewedId,
						previous: cert.id,
						issuer: issuerName,
						serial: issued.serial,
						notAfter: issued.notAfter.toISOString(),
						previousNotAfter: cert.notAfter.toISOString(),
						reason,
						attemptsBefore: cert.renewAttempts,
					},
				},
				{ clock: platform.clock },
			);
			return true;
		});
		if (!stored) return { ...base, result: "skipped", reason: "replaced meanwhile" };
		await options.afterStore?.(cert.id);
		platform.logger.log("info", "certificate renewed", {
			certificate: renewedId,
			previous: cert.id,
			tenant: tenant.id,
			hostname: cert.hostname,
			notAfter: issued.notAfter.toISOString(),
			reason,
		});
		return { ...base, result: "renewed", newCertificateId: renewedId, reason };
	} catch (err) {
		if (err instanceof LostLeaseError) return { ...base, result: "busy", error: err.message };
		return recordFailure(platform, region, cert, err, random, issuerName, base);
	}
}

type AriOutcome = { kind: "renew"; reason: string } | { kind: "defer"; next: Date; reason: string };

/**
 * The CA's window decides where it offers one. Without one (no ARI, or the CA cannot be asked
 * now), the one-third rule applies, and an ARI-capable CA is asked again after `pollMs`.
 */
async function consultAri(
	platform: Platform,
	issuer: CertificateIssuer,
	cert: CertificateRow,
	random: () => number,
	pollMs: number,
): Promise<AriOutcome> {
	const now = platform.clock.now();
	const oneThird = oneThirdRemainingAt(cert);
	const ruleSaysRenew = oneThird.getTime() <= now.getTime();
	let window: RenewalWindow | undefined;
	let failure: string | undefined;
	try {
		window = await issuer.renewalWindow!({
			chainPem: cert.chainPem,
			serial: cert.serial,
			notBefore: cert.notBefore,
			notAfter: cert.notAfter,
		});
	} catch (err) {
		failure = err instanceof Error ? err.message : String(err);
		platform.logger.log("warn", "renewal: the CA's renewal information is unavailable", {
			certificate: cert.id,
			error: failure,
		});
	}
	if (!window) {
		if (ruleSaysRenew) return { kind: "renew", reason: "one-third-lifetime" };
		// Ask again later; never later than the one-third point.
		const next = new Date(Math.min(oneThird.getTime(), now.getTime() + pollMs));
		return { kind: "defer", next, reason: failure ? "ari-unavailable" : "ari-no-window" };
	}
	// A CA's window never holds a renewal back into the alert zone.
	if (cert.notAfter.getTime() - now.getTime() <= EXPIRY_ALERT_MS)
		return { kind: "renew", reason: "expiry-near" };
	const decision = decideByWindow(window, now, random, pollMs);
	if (decision.renew) return { kind: "renew", reason: "ari-window" };
	return { kind: "defer", next: decision.next, reason: "ari-window-later" };
}

/**
 * No issuer: the customer brings the certificate (byo) and renews it. Nothing to issue; within
 * 7 days of expiry it raises the same alert as a failing renewal, once a day.
 */
async function customerCertificate(
	platform: Platform,
	region: RegionHandle,
	cert: CertificateRow,
	base: Pick<RenewalOutcome, "certificateId" | "tenantId" | "hostname" | "regionId">,
): Promise<RenewalOutcome> {
	const now = platform.clock.now();
	const alertFrom = cert.notAfter.getTime() - EXPIRY_ALERT_MS;
	const next = new Date(Math.max(alertFrom, now.getTime() + DAY_MS));
	await setNextRenewal(region, cert.id, next);
	if (now.getTime() < alertFrom)
		return { ...base, result: "skipped", reason: "customer-managed", nextAttemptAt: next };
	const error = `the customer brings this certificate: upload a new one with PUT /v1/tenants/${cert.tenantId}/certificate`;
	platform.logger.log("error", "certificate expires within 7 days and its renewal is failing", {
		alert: "certificate_expiry",
		certificate: cert.id,
		tenant: cert.tenantId,
		hostname: cert.hostname,
		notAfter: cert.notAfter.toISOString(),
		error,
	});
	return { ...base, result: "failed", error, nextAttemptAt: next, alert: true };
}

async function setNextRenewal(region: RegionHandle, id: string, next: Date | null): Promise<void> {
	await region.db
		.update(certificates)
		.set({ nextRenewalAt: next })
		.where(and(eq(certificates.id, id), eq(certificates.status, "active")));
}

async function recordFailure(
	platform: Platform,
	region: RegionHandle,
	cert: CertificateRow,
	err: unknown,
	random: () => number,
	issuerName: string,
	base: Pick<RenewalOutcome, "certificateId" | "tenantId" | "hostname" | "regionId">,
): Promise<RenewalOutcome> {
	const now = platform.clock.now();
	const error = err instanceof Error ? err.message : String(err);
	const attempts = cert.renewAttempts + 1;
	const remaining = cert.notAfter.getTime() - now.getTime();
	const next = new Date(now.getTime() + renewalBackoffMs(attempts, random, remaining));
	await region.db
		.update(certificates)
		.set({ renewAttempts: attempts, nextRenewalAt: next, lastRenewalError: error.slice(0, 2000) })
		.where(and(eq(certificates.id, cert.id), eq(certificates.status, "active")));
	const alert = remaining <= EXPIRY_ALERT_MS;
	const retryable = (err as { retryable?: unknown })?.retryable !== false;
	platform.logger.log(
		alert ? "error" : "warn",
		alert
			? "certificate expires within 7 days and its renewal is failing"
			: "certificate renewal failed; will retry",
		{
			...(alert ? { alert: "certificate_expiry" } : {}),
			certificate: cert.id,
			tenant: cert.tenantId,
			hostname: cert.hostname,
			issuer: issuerName,
			notAfter: cert.notAfter.toISOString(),
			attempts,
			nextAttemptAt: next.toISOString(),
			retryable,
			error,
		},
	);
	return { ...base, result: "failed", error, nextAttemptAt: next, alert };
}
