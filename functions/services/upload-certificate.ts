import { and, eq, ne } from "drizzle-orm";
import { z } from "zod";
import { bumpRouteVersion } from "../../db/route-version";
import { hostnames } from "../../db/schema/catalog";
import { certificates, routes, tenants } from "../../db/schema/region";
import { appendAuditEvent } from "../audit/audit-chain";
import { AppError } from "../errors";
import { zodViolations } from "../policy/violations";
import { validateByoCertificate } from "../providers/issuers/byo";
import { newId } from "../runtime";
import { certificateKeyBinding } from "../secrets/bindings";
import type { ServiceContext } from "./context";

export const BYO_ISSUER = "byo";

const uploadInput = z.strictObject({
	chainPem: z
		.string()
		.min(1)
		.max(64 * 1024),
	privateKeyPem: z
		.string()
		.min(1)
		.max(16 * 1024),
	/** Defaults to the tenant's platform hostname; may be one of its custom domains. */
	hostname: z.string().min(1).optional(),
	/** Roots the chain may end at without including them (publicly trusted certificates). */
	trustedRootsPem: z.string().optional(),
});

/**
 * Stores a certificate the tenant brings: refused unless the key matches, the chain is
 * complete, the names cover the hostname and it is valid for 7 more days. The key is sealed
 * before it is written; the edge swaps to it at once; the previous certificate is superseded.
 */
export async function uploadCertificate({
	ctx,
	input,
}: {
	ctx: ServiceContext;
	input: { tenantId: string; body: unknown };
}): Promise<{ certificateId: string; hostname: string; notAfter: string }> {
	const parsed = uploadInput.safeParse(input.body);
	if (!parsed.success) throw AppError.validation(zodViolations(parsed.error));
	const { store, config, clock, secrets } = ctx.platform;
	const region = await store.locateTenant(input.tenantId);
	const tenant =
		region && (await region.db.query.tenants.findFirst({ where: eq(tenants.id, input.tenantId) }));
	if (!region || !tenant || tenant.status === "deleted")
		throw new AppError("not_found", `tenant "${input.tenantId}" not found`);
	const hostname = parsed.data.hostname ?? `${tenant.slug}.${config.baseDomain}`;
	const [owner] = await store.catalog
		.select()
		.from(hostnames)
		.where(eq(hostnames.hostname, hostname))
		.limit(1);
	if (owner?.tenantId !== tenant.id) {
		throw AppError.validation([
			{ path: "$.hostname", rule: `${hostname} is not a hostname of tenant ${tenant.id}` },
		]);
	}

	const valid = await validateByoCertificate({
		chainPem: parsed.data.chainPem,
		privateKeyPem: parsed.data.privateKeyPem,
		hostname,
		now: clock.now(),
		trustedRootsPem: parsed.data.trustedRootsPem,
	});
	const id = newId("crt");
	const sealed = await secrets.seal(valid.privateKeyPem, certificateKeyBinding(tenant.id, id));
	const now = clock.now();
	await region.db.transaction(async (tx) => {
		await tx.insert(certificates).values({
			id,
			tenantId: tenant.id,
			hostname,
			issuer: BYO_ISSUER,
			serial: valid.serial,
			chainPem: valid.chainPem,
			privateKeyCiphertext: sealed,
			notBefore: valid.notBefore,
			notAfter: valid.notAfter,
			status: "active",
			createdAt: now,
		});
		const superseded = await tx
			.update(certificates)
			.set({ status: "superseded" })
			.where(
				and(
					eq(certificates.hostname, hostname),
					eq(certificates.status, "active"),
					ne(certificates.id, id),
				),
			)
			.returning({ id: certificates.id });
		await tx
			.update(routes)
			.set({ certificateId: id, updatedAt: now })
			.where(eq(routes.hostname, hostname));
		await appendAuditEvent(
			tx,
			{
				chain: tenant.id,
				actor: ctx.actor,
				action: "certificate.uploaded",
				subject: hostname,
				data: {
					certificateId: id,
					serial: valid.serial,
					notAfter: valid.notAfter.toISOString(),
					superseded: superseded.map((s) => s.id),
				},
			},
			{ clock },
		);
		await bumpRouteVersion(tx, now);
	});
	return { certificateId: id, hostname, notAfter: valid.notAfter.toISOString() };
}
