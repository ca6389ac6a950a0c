import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { and, eq } from "drizzle-orm";
import { bumpRouteVersion } from "../../db/route-version";
import { certificates, routes, tenants } from "../../db/schema/region";
import type { IssuedCertificate } from "../../functions/providers/types";
import { certificateKeyBinding } from "../../functions/secrets/bindings";
import { registerNode } from "../../functions/services/nodes";
import { runDueJobs } from "../../functions/services/provisioning/run-jobs";
import { createTenant } from "../../functions/services/tenants";
import { createTestPlatform, type TestPlatform } from "../helpers/test-platform";
import type { TlsFiles } from "./edge-peers";

export const REGION = "eu-central";

export interface BenchPlatform {
	test: TestPlatform;
	tenantId: string;
	/** The tenant's hostname, e.g. bench.localhost. */
	hostname: string;
	/** The tenant's certificate and key as files, for Caddy and nginx. */
	tls: TlsFiles;
	/** PEM roots that verify the tenant's certificate (the region's internal CA). */
	trustAnchors: string[];
}

/**
 * The real platform in `dir` with one data-plane node (the origin) and one tenant, provisioned
 * the real way: the job issues its internal-CA certificate and activates its route.
 */
export async function setUpPlatform(dir: string, originUrl: string): Promise<BenchPlatform> {
	const test = await createTestPlatform({ dir });
	const { platform } = test;
	const ctx = { platform, actor: "bench" };
	await registerNode({
		ctx,
		input: { regionId: REGION, name: "bench-1", address: "127.0.0.1", instanceUrls: [originUrl] },
	});
	const tenant = await createTenant({ ctx, input: { slug: "bench", homeRegion: REGION } });
	const outcomes = await runDueJobs(platform, { holder: "bench" });
	const failed = outcomes.filter((o) => o.state !== "succeeded");
	if (outcomes.length === 0 || failed.length > 0) {
		throw new Error(`provisioning the bench tenant failed: ${JSON.stringify(outcomes)}`);
	}
	const hostname = tenant.hostnames[0] ?? `bench.${platform.config.baseDomain}`;

	// Caddy and nginx serve the very certificate and key the edge serves.
	const region = platform.store.region(REGION);
	const [cert] = await region.db
		.select()
		.from(certificates)
		.where(and(eq(certificates.tenantId, tenant.id), eq(certificates.status, "active")))
		.limit(1);
	if (!cert) throw new Error("the bench tenant has no active certificate");
	const key = await platform.secrets.openText(
		cert.privateKeyCiphertext,
		certificateKeyBinding(tenant.id, cert.id),
	);
	const certFile = join(dir, "tenant-cert.pem");
	const keyFile = join(dir, "tenant-key.pem");
	writeFileSync(certFile, cert.chainPem);
	writeFileSync(keyFile, key, { mode: 0o600 });
	const trustAnchors = await platform.providers.get("issuer", "internal-ca").trustAnchors(REGION);
	return {
		test,
		tenantId: tenant.id,
		hostname,
		tls: { hostname, certFile, keyFile },
		trustAnchors,
	};
}

/** How many distinct certificates the internal CA really issues for the bulk rows (see below). */
const DISTINCT_CERTIFICATES = 256;
const BATCH = 1_000;
const SEAL_CONCURRENCY = 250;

/**
 * Adds `count` tenants straight into the region database, each with its own route and its own
 * certificate row (own id, own sealed key ciphertext bound to that tenant and row), as the
 * provisioning job would leave them. Issuing 100,000 certificates costs ~6 ms each here, so
 * the internal CA issues DISTINCT_CERTIFICATES real ones and the rows cycle through their PEM
 * text: every row still decrypts to its own key string and carries its own chain string, which
 * is what the edge holds in memory; only the names inside the shared certificates do not match
 * (their TLS contexts are built on a handshake, and the memory figure takes none for them).
 * Catalog hostname rows are not written: the edge never reads the catalog.
 */
export async function seedBulkTenants(
	bench: BenchPlatform,
	count: number,
	progress: (done: number) => void,
): Promise<void> {
	const { platform } = bench.test;
	const issuer = platform.providers.get("issuer", "internal-ca");
	const pool: IssuedCertificate[] = [];
	for (let i = 0; i < Math.min(count, DISTINCT_CERTIFICATES); i++) {
		pool.push(
			await issuer.issue({
				tenantId: bulkTenantId(i),
				regionId: REGION,
				hostnames: [bulkHostname(i)],
			}),
		);
	}
	const region = platform.store.region(REGION);
	const now = platform.clock.now();
	for (let start = 0; start < count; start += BATCH) {
		const indices = Array.from({ length: Math.min(BATCH, count - start) }, (_, k) => start + k);
		const sealed: string[] = [];
		for (let k = 0; k < indices.length; k += SEAL_CONCURRENCY) {
			sealed.push(
				...(await Promise.all(
					indices.slice(k, k + SEAL_CONCURRENCY).map((i) => {
						const issued = pool[i % pool.length]!;
						return platform.secrets.seal(
							issued.privateKeyPem,
							certificateKeyBinding(bulkTenantId(i), bulkCertificateId(i)),
						);
					}),
				)),
			);
		}
		await region.db.transaction(async (tx) => {
			await tx.insert(tenants).values(
				indices.map((i) => ({
					id: bulkTenantId(i),
					slug: `bulk-${i}`,
					profile: "standard" as const,
					homeRegion: REGION,
					allowedRegions: [REGION],
					status: "active" as const,
					createdAt: now,
					updatedAt: now,
				})),
			);
			await tx.insert(certificates).values(
				indices.map((i, k) => {
					const issued = pool[i % pool.length]!;
					return {
						id: bulkCertificateId(i),
						tenantId: bulkTenantId(i),
						hostname: bulkHostname(i),
						issuer: "internal-ca",
						serial: issued.serial,
						chainPem: issued.chainPem,
						privateKeyCiphertext: sealed[k]!,
						notBefore: issued.notBefore,
						notAfter: issued.notAfter,
						status: "active" as const,
						createdAt: now,
					};
				}),
			);
			await tx.insert(routes).values(
				indices.map((i) => ({
					hostname: bulkHostname(i),
					tenantId: bulkTenantId(i),
					certificateId: bulkCertificateId(i),
					updatedAt: now,
				})),
			);
		});
		progress(start + indices.length);
	}
	await bumpRouteVersion(region.db, now);
}

function bulkTenantId(i: number): string {
	return `ten_bulk_${i}`;
}

function bulkCertificateId(i: number): string {
	return `crt_bulk_${i}`;
}

function bulkHostname(i: number): string {
	return `bulk-${i}.localhost`;
}
