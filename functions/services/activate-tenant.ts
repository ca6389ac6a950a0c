import { and, eq } from "drizzle-orm";
import { bumpRouteVersion } from "../../db/route-version";
import { certificates, dnsRecords, nodes, routes, tenants } from "../../db/schema/region";
import { appendAuditEvent } from "../audit/audit-chain";
import { AppError } from "../errors";
import { resolveBinding } from "../policy/check-config";
import { newId } from "../runtime";
import { certificateKeyBinding } from "../secrets/bindings";
import type { ServiceContext } from "./context";

/**
 * Brings a tenant's primary hostname live: DNS record through the profile's DNS provider,
 * a certificate from its issuer (key sealed before it is stored), then the route, all in the
 * tenant's home region. Each step is safe to repeat. The provisioning job drives the same
 * steps from webhooks; the CLI calls this directly.
 */
export async function activateTenant({
	ctx,
	input,
}: {
	ctx: ServiceContext;
	input: { id: string };
}): Promise<{ hostname: string; certificateId: string }> {
	const { config, store, providers, secrets, clock } = ctx.platform;
	const region = await store.locateTenant(input.id);
	const tenant =
		region && (await region.db.query.tenants.findFirst({ where: eq(tenants.id, input.id) }));
	if (!region || !tenant) throw new AppError("not_found", `tenant "${input.id}" not found`);
	if (tenant.status === "deleted")
		throw new AppError("conflict", `tenant "${input.id}" is deleted`);
	const hostname = `${tenant.slug}.${config.baseDomain}`;

	const bound = (kind: "dns" | "issuer") => {
		const binding = resolveBinding(config, tenant.profile, region.id, kind);
		if (!binding) {
			throw new AppError(
				"conflict",
				`profile ${tenant.profile} has no ${kind} provider for region ${region.id}; the tenant must bring its own`,
			);
		}
		return binding.providerName;
	};
	const dnsName = bound("dns");
	const issuerName = bound("issuer");

	// DNS: the tenant's hostname points at the data-plane nodes of its home region.
	const regionNodes = await region.db.select().from(nodes).where(eq(nodes.regionId, region.id));
	const addresses = regionNodes
		.filter(
			(n) => n.state !== "unhealthy" && (!n.dedicatedTenantId || n.dedicatedTenantId === tenant.id),
		)
		.map((n) => n.address)
		.filter((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a));
	if (addresses.length > 0) {
		const record = {
			name: hostname,
			type: "A" as const,
			ttl: 60,
			values: [...new Set(addresses)].sort(),
		};
		await providers.get("dns", dnsName).upsert(record);
		const now = clock.now();
		await region.db
			.insert(dnsRecords)
			.values({
				id: newId("dns"),
				tenantId: tenant.id,
				provider: dnsName,
				updatedAt: now,
				...record,
			})
			.onConflictDoUpdate({
				target: [dnsRecords.name, dnsRecords.type],
				set: { values: record.values, ttl: record.ttl, provider: dnsName, updatedAt: now },
			});
	}

	const issued = await providers.get("issuer", issuerName).issue({
		tenantId: tenant.id,
		regionId: region.id,
		hostnames: [hostname],
	});
	const certificateId = newId("crt");
	const sealedKey = await secrets.seal(
		issued.privateKeyPem,
		certificateKeyBinding(tenant.id, certificateId),
	);
	const now = clock.now();

	await region.db.transaction(async (tx) => {
		const previous = await tx
			.update(certificates)
			.set({ status: "superseded" })
			.where(
				and(
					eq(certificates.tenantId, tenant.id),
					eq(certificates.hostname, hostname),
					eq(certificates.status, "active"),
				),
			)
			.returning({ id: certificates.id });
		await tx.insert(certificates).values({
			id: certificateId,
			tenantId: tenant.id,
			hostname,
			issuer: issuerName,
			serial: issued.serial,
			chainPem: issued.chainPem,
			privateKeyCiphertext: sealedKey,
			notBefore: issued.notBefore,
			notAfter: issued.notAfter,
			status: "active",
			createdAt: now,
		});
		await tx
			.insert(routes)
			.values({ hostname, tenantId: tenant.id, certificateId, updatedAt: now })
			.onConflictDoUpdate({ target: routes.hostname, set: { certificateId, updatedAt: now } });
		await tx
			.update(tenants)
			.set({ status: "active", updatedAt: now })
			.where(eq(tenants.id, tenant.id));
		const audit = (action: string, data: Record<string, unknown>) =>
			appendAuditEvent(
				tx,
				{ chain: tenant.id, actor: ctx.actor, action, subject: hostname, data },
				{ clock },
			);
		await audit("certificate.issued", {
			certificateId,
			issuer: issuerName,
			serial: issued.serial,
			notAfter: issued.notAfter.toISOString(),
			superseded: previous.map((p) => p.id),
		});
		await audit("route.activated", { hostname, certificateId });
		await bumpRouteVersion(tx, now);
	});
	return { hostname, certificateId };
}
