import { eq } from "drizzle-orm";
import { bumpRouteVersion } from "../../../db/route-version";
import { certificates, instances, nodes, routes, tenants } from "../../../db/schema/region";
import type { RegionHandle } from "../../../db/store";
import { certificateKeyBinding } from "../../../functions/secrets/bindings";
import type { SecretBox } from "../../../functions/secrets/secret-box";
import type { TestCa } from "./test-certificates";

let counter = 0;
/** Unique per process, so suites never share ids. */
export function uniqueId(prefix: string): string {
	counter += 1;
	return `${prefix}_${process.pid}_${counter}_${Math.random().toString(36).slice(2, 8)}`;
}

export interface SeedTenant {
	id?: string;
	profile?: "standard" | "sovereign" | "byo";
	allowedRegions?: string[];
	status?: "provisioning" | "active" | "suspended" | "deleted";
}

/** Inserts a tenant in its home region (the region given) and returns its id. */
export async function seedTenant(region: RegionHandle, input: SeedTenant = {}): Promise<string> {
	const id = input.id ?? uniqueId("ten");
	const now = new Date();
	await region.db.insert(tenants).values({
		id,
		slug: id.replace(/_/g, "-"),
		profile: input.profile ?? "standard",
		homeRegion: region.id,
		allowedRegions: input.allowedRegions ?? [region.id],
		status: input.status ?? "active",
		createdAt: now,
		updatedAt: now,
	});
	return id;
}

export interface SeedInstance {
	/** Instance id; ids sort in the order the table keeps instances of one region. */
	id?: string;
	url: string;
	state?: "unknown" | "healthy" | "unhealthy";
	dedicatedTenantId?: string;
}

/** Inserts a node and one instance on it; returns the instance id. */
export async function seedInstance(region: RegionHandle, input: SeedInstance): Promise<string> {
	const id = input.id ?? uniqueId("ins");
	const nodeId = `node_${id}`;
	const now = new Date();
	await region.db.insert(nodes).values({
		id: nodeId,
		regionId: region.id,
		name: nodeId,
		address: "127.0.0.1",
		dedicatedTenantId: input.dedicatedTenantId ?? null,
		state: input.state ?? "healthy",
		updatedAt: now,
	});
	await region.db.insert(instances).values({ id, nodeId, url: input.url, createdAt: now });
	return id;
}

export async function setInstanceState(
	region: RegionHandle,
	instanceId: string,
	state: "healthy" | "unhealthy",
): Promise<void> {
	await region.db
		.update(nodes)
		.set({ state })
		.where(eq(nodes.id, `node_${instanceId}`));
}

export interface SeedRoute {
	hostname: string;
	tenantId: string;
	/** Issue and store a certificate for the hostname (default true). */
	certificate?: boolean;
}

export interface TlsMaterial {
	ca: TestCa;
	secrets: SecretBox;
}

/** Inserts a route, and by default an active certificate for it with its key sealed. */
export async function seedRoute(
	region: RegionHandle,
	tls: TlsMaterial,
	input: SeedRoute,
): Promise<{ certificateId?: string; serial?: string }> {
	let issued: { certificateId: string; serial: string } | undefined;
	if (input.certificate ?? true) issued = await seedCertificate(region, tls, input);
	await region.db.insert(routes).values({
		hostname: input.hostname,
		tenantId: input.tenantId,
		certificateId: issued?.certificateId ?? null,
		updatedAt: new Date(),
	});
	return issued ?? {};
}

/** Stores a fresh active certificate for (tenant, hostname); does not touch the route. */
export async function seedCertificate(
	region: RegionHandle,
	tls: TlsMaterial,
	input: { hostname: string; tenantId: string },
): Promise<{ certificateId: string; serial: string }> {
	const certificateId = uniqueId("crt");
	const issued = await tls.ca.issue(input.hostname);
	const sealed = await tls.secrets.seal(
		issued.keyPem,
		certificateKeyBinding(input.tenantId, certificateId),
	);
	await region.db.insert(certificates).values({
		id: certificateId,
		tenantId: input.tenantId,
		hostname: input.hostname,
		issuer: "edge-test-ca",
		serial: issued.serial,
		chainPem: issued.chainPem,
		privateKeyCiphertext: sealed,
		notBefore: issued.notBefore,
		notAfter: issued.notAfter,
		status: "active",
		createdAt: new Date(),
	});
	return { certificateId, serial: issued.serial };
}

export async function bump(region: RegionHandle): Promise<void> {
	await bumpRouteVersion(region.db, new Date());
}
