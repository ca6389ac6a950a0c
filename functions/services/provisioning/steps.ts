import { and, eq, inArray, ne } from "drizzle-orm";
import { bumpRouteVersion } from "../../../db/route-version";
import { hostnames } from "../../../db/schema/catalog";
import {
	certificates,
	customDomains,
	dnsRecords,
	outboundWebhooks,
	routes,
	tenants,
} from "../../../db/schema/region";
import { appendAuditEvent } from "../../audit/audit-chain";
import { checkTenantPlacement } from "../../policy/tenant-placement";
import { formatViolation } from "../../policy/violations";
import type { DnsRecordType } from "../../providers/types";
import { newId } from "../../runtime";
import { certificateKeyBinding } from "../../secrets/bindings";
import { residentTargets } from "../residency-targets";
import { tenantProvider, tenantProviderName } from "../tenant-providers";
import type { JobKind } from "./job-kinds";
import { PermanentError, RetryableError, type StepContext, type StepFn } from "./step-context";

/** A certificate younger than this share of its lifetime is kept rather than reissued. */
const REUSE_WHILE_REMAINING = 1 / 3;

/** The tenant's own provider for `kind`, or its profile's; undefined when it has neither. */
function providerFor<K extends "dns" | "issuer">(ctx: StepContext, kind: K) {
	return tenantProvider(ctx.platform, ctx.region, ctx.tenant, kind);
}

function audit(
	ctx: StepContext,
	tx: Parameters<StepContext["complete"]>[0],
	action: string,
	data: Record<string, unknown>,
) {
	return appendAuditEvent(
		tx,
		{ chain: ctx.tenant.id, actor: ctx.actor, action, subject: ctx.hostname, data },
		{ clock: ctx.platform.clock },
	);
}

/** The certificate currently in service for the job's hostname (at most one is active). */
function activeCertificates(ctx: StepContext) {
	return ctx.region.db
		.select()
		.from(certificates)
		.where(
			and(
				eq(certificates.hostname, ctx.hostname),
				eq(certificates.tenantId, ctx.tenant.id),
				eq(certificates.status, "active"),
			),
		)
		.limit(1);
}

const validate: StepFn = async (ctx) => {
	if (ctx.tenant.status === "deleted")
		throw new PermanentError(`tenant ${ctx.tenant.id} was deleted`);
	const violations = checkTenantPlacement(ctx.platform.config, ctx.tenant);
	if (violations.length > 0) throw new PermanentError(violations.map(formatViolation).join("; "));
	await ctx.region.db.transaction((tx) => ctx.complete(tx));
};

/** A and AAAA record sets to the tenant's resident nodes; a family with no node is removed. */
const dns: StepFn = async (ctx) => {
	const targets = await residentTargets(ctx.platform, ctx.tenant);
	if (!targets) {
		throw new RetryableError(
			`no eligible data-plane node inside the residency of tenant ${ctx.tenant.id}`,
		);
	}
	const bound = await providerFor(ctx, "dns");
	if (!bound) {
		// byo without a DNS provider: the customer points the name; the job records where to.
		await ctx.region.db.transaction((tx) =>
			ctx.complete(tx, { dnsManagedByCustomer: true, pointTo: [...targets.ipv4, ...targets.ipv6] }),
		);
		return;
	}
	const { name, provider } = bound;
	const sets: Array<{ type: DnsRecordType; values: string[] }> = [
		{ type: "A", values: targets.ipv4 },
		{ type: "AAAA", values: targets.ipv6 },
	];
	for (const set of sets) {
		if (set.values.length > 0)
			await provider.upsert({ name: ctx.hostname, type: set.type, ttl: 60, values: set.values });
		else await provider.remove(ctx.hostname, set.type);
	}
	const now = ctx.platform.clock.now();
	await ctx.region.db.transaction(async (tx) => {
		for (const set of sets) {
			if (set.values.length === 0) {
				await tx
					.delete(dnsRecords)
					.where(and(eq(dnsRecords.name, ctx.hostname), eq(dnsRecords.type, set.type)));
				continue;
			}
			await tx
				.insert(dnsRecords)
				.values({
					id: newId("dns"),
					tenantId: ctx.tenant.id,
					name: ctx.hostname,
					type: set.type,
					values: set.values,
					ttl: 60,
					provider: name,
					updatedAt: now,
				})
				.onConflictDoUpdate({
					target: [dnsRecords.name, dnsRecords.type],
					set: { values: set.values, ttl: 60, provider: name, updatedAt: now },
				});
		}
		await audit(ctx, tx, "dns.records_set", {
			provider: name,
			region: targets.regionId,
			ipv4: targets.ipv4,
			ipv6: targets.ipv6,
		});
		await ctx.complete(tx);
	});
};

/**
 * Issues a certificate unless a fresh one from the same issuer is already stored (so a
 * resumed job does not issue twice). The key is sealed before it touches the database.
 */
const certificate: StepFn = async (ctx) => {
	const bound = await providerFor(ctx, "issuer");
	if (!bound) return awaitUploadedCertificate(ctx);
	const issuerName = bound.name;
	const now = ctx.platform.clock.now();
	const [current] = await activeCertificates(ctx);
	if (current && current.issuer === issuerName) {
		const lifetime = current.notAfter.getTime() - current.notBefore.getTime();
		if (current.notAfter.getTime() - now.getTime() > lifetime * REUSE_WHILE_REMAINING) {
			await ctx.region.db.transaction((tx) =>
				ctx.complete(tx, { certificateId: current.id, reused: true }),
			);
			return;
		}
	}
	const issued = await bound.provider.issue({
		tenantId: ctx.tenant.id,
		regionId: ctx.region.id,
		hostnames: [ctx.hostname],
	});
	const id = newId("crt");
	const sealed = await ctx.platform.secrets.seal(
		issued.privateKeyPem,
		certificateKeyBinding(ctx.tenant.id, id),
	);
	await ctx.region.db.transaction(async (tx) => {
		// The previous certificate keeps serving until the route step swaps to this one.
		await tx.insert(certificates).values({
			id,
			tenantId: ctx.tenant.id,
			hostname: ctx.hostname,
			issuer: issuerName,
			serial: issued.serial,
			chainPem: issued.chainPem,
			privateKeyCiphertext: sealed,
			notBefore: issued.notBefore,
			notAfter: issued.notAfter,
			status: "active",
			createdAt: ctx.platform.clock.now(),
		});
		const superseded = await tx
			.update(certificates)
			.set({ status: "superseded" })
			.where(
				and(
					eq(certificates.hostname, ctx.hostname),
					eq(certificates.status, "active"),
					ne(certificates.id, id),
				),
			)
			.returning({ id: certificates.id });
		await audit(ctx, tx, "certificate.issued", {
			certificateId: id,
			issuer: issuerName,
			serial: issued.serial,
			notAfter: issued.notAfter.toISOString(),
			superseded: superseded.map((s) => s.id),
		});
		await ctx.complete(tx, { certificateId: id });
	});
};

/** Without an issuer (byo), the step waits, retrying, for the customer's own certificate. */
async function awaitUploadedCertificate(ctx: StepContext): Promise<void> {
	const [uploaded] = await activeCertificates(ctx);
	if (!uploaded || uploaded.notAfter.getTime() <= ctx.platform.clock.now().getTime()) {
		throw new RetryableError(
			`waiting for the customer's certificate for ${ctx.hostname}: upload it with PUT /v1/tenants/${ctx.tenant.id}/certificate`,
		);
	}
	await ctx.region.db.transaction((tx) =>
		ctx.complete(tx, { certificateId: uploaded.id, uploaded: true }),
	);
}

const route: StepFn = async (ctx) => {
	const [cert] = await activeCertificates(ctx);
	if (!cert) throw new RetryableError(`no active certificate for ${ctx.hostname} yet`);
	const now = ctx.platform.clock.now();
	await ctx.region.db.transaction(async (tx) => {
		await tx
			.insert(routes)
			.values({
				hostname: ctx.hostname,
				tenantId: ctx.tenant.id,
				certificateId: cert.id,
				updatedAt: now,
			})
			.onConflictDoUpdate({
				target: routes.hostname,
				set: { certificateId: cert.id, updatedAt: now },
			});
		if (ctx.tenant.status === "provisioning") {
			await tx
				.update(tenants)
				.set({ status: "active", updatedAt: now })
				.where(eq(tenants.id, ctx.tenant.id));
		}
		if (ctx.job.kind === "domain-add") {
			await tx
				.update(customDomains)
				.set({ status: "active", updatedAt: now })
				.where(eq(customDomains.hostname, ctx.hostname));
		}
		await bumpRouteVersion(tx, now);
		await audit(ctx, tx, "route.activated", { certificateId: cert.id });
		await ctx.complete(tx);
	});
};

/** Queues the signed "endpoint live" notification in the same transaction that ends the job. */
const notify: StepFn = async (ctx) => {
	const platformConfig = ctx.platform.config.webhooks.platforms.find(
		(p) => p.id === ctx.tenant.platformId,
	);
	await ctx.region.db.transaction(async (tx) => {
		if (platformConfig?.notifyUrl) {
			await tx.insert(outboundWebhooks).values({
				id: newId("evt"),
				platformId: ctx.tenant.platformId,
				tenantId: ctx.tenant.id,
				type: "endpoint.live",
				payload: {
					tenantId: ctx.tenant.id,
					hostname: ctx.hostname,
					url: `https://${ctx.hostname}/`,
					jobId: ctx.job.id,
				},
				createdAt: ctx.platform.clock.now(),
			});
		}
		await ctx.complete(tx, { notified: Boolean(platformConfig?.notifyUrl) });
	});
};

/** Removes every DNS record set Castellan wrote for the tenant (or for one custom hostname). */
const removeDns: StepFn = async (ctx) => {
	const rows = await ctx.region.db
		.select()
		.from(dnsRecords)
		.where(eq(dnsRecords.tenantId, ctx.tenant.id));
	for (const row of rows) {
		// Records written through the tenant's own provider are removed through it too.
		const provider =
			row.provider === tenantProviderName("dns")
				? (await providerFor(ctx, "dns"))?.provider
				: ctx.platform.providers.get("dns", row.provider);
		if (!provider) throw new PermanentError(`no provider left to remove ${row.name} ${row.type}`);
		await provider.remove(row.name, row.type);
	}
	await ctx.region.db.transaction(async (tx) => {
		if (rows.length > 0)
			await tx.delete(dnsRecords).where(
				inArray(
					dnsRecords.id,
					rows.map((r) => r.id),
				),
			);
		await audit(ctx, tx, "dns.records_removed", {
			records: rows.map((r) => `${r.name} ${r.type}`),
		});
		await ctx.complete(tx);
	});
};

/** Marks certificates revoked and discards their keys; the rows stay for the audit trail. */
function discardCertificates(scope: "tenant" | "hostname"): StepFn {
	return async (ctx) => {
		const where =
			scope === "tenant"
				? and(eq(certificates.tenantId, ctx.tenant.id), ne(certificates.status, "revoked"))
				: and(
						eq(certificates.tenantId, ctx.tenant.id),
						eq(certificates.hostname, ctx.hostname),
						ne(certificates.status, "revoked"),
					);
		await ctx.region.db.transaction(async (tx) => {
			const discarded = await tx
				.update(certificates)
				.set({ status: "revoked", privateKeyCiphertext: "" })
				.where(where)
				.returning({ id: certificates.id });
			await audit(ctx, tx, "certificate.discarded", { certificates: discarded.map((d) => d.id) });
			await ctx.complete(tx);
		});
	};
}

function removeRoutes(scope: "tenant" | "hostname"): StepFn {
	return async (ctx) => {
		const now = ctx.platform.clock.now();
		await ctx.region.db.transaction(async (tx) => {
			const removed = await tx
				.delete(routes)
				.where(
					scope === "tenant"
						? eq(routes.tenantId, ctx.tenant.id)
						: and(eq(routes.tenantId, ctx.tenant.id), eq(routes.hostname, ctx.hostname)),
				)
				.returning({ hostname: routes.hostname });
			await bumpRouteVersion(tx, now);
			await audit(ctx, tx, "route.removed", { hostnames: removed.map((r) => r.hostname) });
			await ctx.complete(tx);
		});
	};
}

/** Gives the hostname(s) back: the catalog index rows go; the tenant's audit chain stays. */
function release(scope: "tenant" | "hostname"): StepFn {
	return async (ctx) => {
		const { catalog } = ctx.platform.store;
		await catalog
			.delete(hostnames)
			.where(
				scope === "tenant"
					? eq(hostnames.tenantId, ctx.tenant.id)
					: and(eq(hostnames.tenantId, ctx.tenant.id), eq(hostnames.hostname, ctx.hostname)),
			);
		const now = ctx.platform.clock.now();
		await ctx.region.db.transaction(async (tx) => {
			if (scope === "hostname") {
				await tx
					.update(customDomains)
					.set({ status: "removed", updatedAt: now })
					.where(eq(customDomains.hostname, ctx.hostname));
			} else {
				await tx
					.update(customDomains)
					.set({ status: "removed", updatedAt: now })
					.where(eq(customDomains.tenantId, ctx.tenant.id));
			}
			await audit(ctx, tx, scope === "tenant" ? "tenant.released" : "domain.released", {});
			await ctx.complete(tx);
		});
	};
}

/** Proof of control of a custom domain: CNAME to the tenant's hostname, or the TXT token. */
const verifyDomain: StepFn = async (ctx) => {
	const [domain] = await ctx.region.db
		.select()
		.from(customDomains)
		.where(eq(customDomains.hostname, ctx.hostname))
		.limit(1);
	if (!domain || domain.tenantId !== ctx.tenant.id)
		throw new PermanentError(`custom domain ${ctx.hostname} is not registered for this tenant`);
	const target = `${ctx.tenant.slug}.${ctx.platform.config.baseDomain}`;
	const proof =
		domain.verification === "cname"
			? (await ctx.platform.resolver.cname(ctx.hostname)).map(stripDot).includes(target)
			: (await ctx.platform.resolver.txt(`_castellan-challenge.${ctx.hostname}`)).includes(
					domain.token,
				);
	if (!proof) {
		throw new RetryableError(
			domain.verification === "cname"
				? `domain control not proven yet: ${ctx.hostname} must be a CNAME to ${target}`
				: `domain control not proven yet: _castellan-challenge.${ctx.hostname} must have a TXT record "${domain.token}"`,
		);
	}
	const now = ctx.platform.clock.now();
	await ctx.region.db.transaction(async (tx) => {
		await tx
			.update(customDomains)
			.set({ status: "verified", verifiedAt: now, updatedAt: now })
			.where(eq(customDomains.hostname, ctx.hostname));
		await audit(ctx, tx, "domain.verified", { method: domain.verification });
		await ctx.complete(tx);
	});
};

function stripDot(name: string): string {
	return name.toLowerCase().replace(/\.$/, "");
}

export const STEPS: Record<JobKind, Record<string, StepFn>> = {
	provision: { validate, dns, certificate, route, notify },
	deprovision: {
		dns: removeDns,
		certificates: discardCertificates("tenant"),
		routes: removeRoutes("tenant"),
		release: release("tenant"),
	},
	"domain-add": { verify: verifyDomain, certificate, route, notify },
	"domain-remove": {
		routes: removeRoutes("hostname"),
		certificates: discardCertificates("hostname"),
		release: release("hostname"),
	},
};
