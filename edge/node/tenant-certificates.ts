import { createPrivateKey } from "node:crypto";
import { createSecureContext, type SecureContext } from "node:tls";
import { and, eq, inArray, sql } from "drizzle-orm";
import { certificates } from "../../db/schema/region";
import type { ControlStore, RegionHandle } from "../../db/store";
import type { Clock, Logger } from "../../functions/runtime";
import { certificateKeyBinding } from "../../functions/secrets/bindings";
import type { SecretBox } from "../../functions/secrets/secret-box";
import { normalizeServerName } from "../core/host-name";
import type { RouteSnapshot, SnapshotHost } from "../core/route-snapshot";

/** A certificate chain and its decrypted key, held in memory only. */
interface CertificateMaterial {
	id: string;
	tenantId: string;
	certPem: string;
	keyPem: string;
}

/**
 * The TLS certificate of every routed hostname. Keys are decrypted once when a certificate
 * first appears; a SecureContext is built on the first handshake for it and then reused.
 */
export class CertificateSet {
	readonly #byHost: Map<string, CertificateMaterial>;
	readonly #contexts: Map<string, SecureContext | null>;

	constructor(
		byHost: Map<string, CertificateMaterial>,
		contexts: Map<string, SecureContext | null>,
		private readonly logger: Logger,
	) {
		this.#byHost = byHost;
		this.#contexts = contexts;
	}

	/** The context for an SNI name; undefined fails the handshake (there is no default certificate). */
	contextFor(serverName: string): SecureContext | undefined {
		const name = this.#byHost.has(serverName) ? serverName : normalizeServerName(serverName);
		const material = name === undefined ? undefined : this.#byHost.get(name);
		if (!material) return undefined;
		let context = this.#contexts.get(material.id);
		if (context === undefined) {
			try {
				context = createSecureContext({ cert: material.certPem, key: material.keyPem });
			} catch (err) {
				// Remembered as null so a broken certificate is logged once, not on every handshake.
				context = null;
				this.logger.log("error", "edge: unusable certificate", {
					certificateId: material.id,
					tenantId: material.tenantId,
					reason: err instanceof Error ? err.message : String(err),
				});
			}
			this.#contexts.set(material.id, context);
		}
		return context ?? undefined;
	}

	get size(): number {
		return this.#byHost.size;
	}

	/** @internal used by the next load to keep what is already decrypted. */
	carryOver(): {
		materials: Map<string, CertificateMaterial>;
		contexts: Map<string, SecureContext | null>;
	} {
		const materials = new Map<string, CertificateMaterial>();
		for (const m of this.#byHost.values()) materials.set(m.id, m);
		return { materials, contexts: this.#contexts };
	}
}

export interface LoadCertificatesOptions {
	store: ControlStore;
	secrets: SecretBox;
	snapshot: RouteSnapshot;
	clock: Clock;
	logger: Logger;
	/** The set in use: certificates it already holds are not read or decrypted again. */
	previous?: CertificateSet | undefined;
}

interface CertificateMeta {
	id: string;
	tenantId: string;
	hostname: string;
	/** Epoch milliseconds. */
	notBefore: number;
	notAfter: number;
	region: RegionHandle;
}

const FETCH_BATCH = 200;
const DECRYPT_CONCURRENCY = 32;

/** Picks, reads and decrypts the active certificate of every host in the snapshot. */
export async function loadCertificateSet(
	options: LoadCertificatesOptions,
): Promise<CertificateSet> {
	const { store, secrets, snapshot, logger } = options;
	const metas = await readActiveCertificates(store);
	const byId = new Map(metas.map((m) => [m.id, m]));
	const byTenantHost = new Map<string, CertificateMeta[]>();
	for (const m of metas) {
		const key = `${m.tenantId} ${m.hostname}`;
		const list = byTenantHost.get(key);
		if (list) list.push(m);
		else byTenantHost.set(key, [m]);
	}

	const chosen = new Map<string, CertificateMeta>();
	const now = options.clock.now().getTime();
	for (const host of snapshot.hosts) {
		const hostname = normalizeServerName(host.hostname);
		const meta = hostname && pickCertificate(host, hostname, byId, byTenantHost, now);
		if (hostname && meta) chosen.set(hostname, meta);
	}

	const carried = options.previous?.carryOver();
	const materials = new Map<string, CertificateMaterial>();
	const missing = new Map<string, CertificateMeta>();
	for (const meta of chosen.values()) {
		const known = carried?.materials.get(meta.id);
		if (known) materials.set(meta.id, known);
		else missing.set(meta.id, meta);
	}
	for (const m of await readAndDecrypt([...missing.values()], secrets, logger))
		materials.set(m.id, m);

	const byHost = new Map<string, CertificateMaterial>();
	for (const [hostname, meta] of chosen) {
		const material = materials.get(meta.id);
		if (material) byHost.set(hostname, material);
	}
	const contexts = new Map<string, SecureContext | null>();
	for (const [id, context] of carried?.contexts ?? [])
		if (materials.has(id)) contexts.set(id, context);
	return new CertificateSet(byHost, contexts, logger);
}

/**
 * The route's own certificate when it names one of the same tenant; otherwise the tenant's
 * active certificate for that hostname valid now with the latest expiry. Never another
 * tenant's certificate, whatever the route row says.
 */
function pickCertificate(
	host: SnapshotHost,
	hostname: string,
	byId: ReadonlyMap<string, CertificateMeta>,
	byTenantHost: ReadonlyMap<string, CertificateMeta[]>,
	now: number,
): CertificateMeta | undefined {
	const named = host.certificateId ? byId.get(host.certificateId) : undefined;
	if (named && named.tenantId === host.tenantId) return named;
	const candidates = byTenantHost.get(`${host.tenantId} ${hostname}`) ?? [];
	let best: CertificateMeta | undefined;
	const score = (m: CertificateMeta) =>
		(m.notBefore <= now && now < m.notAfter ? 1 : 0) * 1e15 + m.notAfter;
	for (const m of candidates) if (!best || score(m) > score(best)) best = m;
	return best;
}

async function readActiveCertificates(store: ControlStore): Promise<CertificateMeta[]> {
	const perRegion = await Promise.all(
		store.regions().map(async (region) => {
			// One JSON text instead of a row object per certificate: see load-route-snapshot.ts.
			const result = await region.db.get<{ rows: string }>(
				sql`select json_group_array(json_array(id, tenant_id, hostname, not_before, not_after)) as rows
				from ${certificates} where status = 'active'`,
			);
			const rows = JSON.parse(result.rows) as Array<[string, string, string, number, number]>;
			return rows.map(([id, tenantId, hostname, notBefore, notAfter]) => ({
				id,
				tenantId,
				hostname: hostname.toLowerCase(),
				notBefore,
				notAfter,
				region,
			}));
		}),
	);
	return perRegion.flat();
}

async function readAndDecrypt(
	metas: CertificateMeta[],
	secrets: SecretBox,
	logger: Logger,
): Promise<CertificateMaterial[]> {
	const rows: Array<{ meta: CertificateMeta; chainPem: string; ciphertext: string }> = [];
	const byRegion = new Map<RegionHandle, CertificateMeta[]>();
	for (const m of metas) byRegion.set(m.region, [...(byRegion.get(m.region) ?? []), m]);
	for (const [region, list] of byRegion) {
		for (let i = 0; i < list.length; i += FETCH_BATCH) {
			const batch = new Map(list.slice(i, i + FETCH_BATCH).map((m) => [m.id, m]));
			const found = await region.db
				.select({
					id: certificates.id,
					chainPem: certificates.chainPem,
					ciphertext: certificates.privateKeyCiphertext,
				})
				.from(certificates)
				.where(and(inArray(certificates.id, [...batch.keys()]), eq(certificates.status, "active")));
			for (const r of found)
				rows.push({ meta: batch.get(r.id)!, chainPem: r.chainPem, ciphertext: r.ciphertext });
		}
	}

	const out: CertificateMaterial[] = [];
	for (let i = 0; i < rows.length; i += DECRYPT_CONCURRENCY) {
		const batch = rows.slice(i, i + DECRYPT_CONCURRENCY);
		const opened = await Promise.all(
			batch.map(async ({ meta, chainPem, ciphertext }) => {
				try {
					const key = await secrets.open(ciphertext, certificateKeyBinding(meta.tenantId, meta.id));
					return { id: meta.id, tenantId: meta.tenantId, certPem: chainPem, keyPem: toPem(key) };
				} catch (err) {
					// Its hostname then fails the handshake: better than serving someone else's certificate.
					logger.log("error", "edge: cannot decrypt certificate key", {
						certificateId: meta.id,
						tenantId: meta.tenantId,
						reason: err instanceof Error ? err.message : String(err),
					});
					return undefined;
				}
			}),
		);
		for (const m of opened) if (m) out.push(m);
	}
	return out;
}

/** Keys are sealed as PKCS#8 PEM text; raw PKCS#8 DER is accepted too. */
function toPem(key: Uint8Array): string {
	const text = Buffer.from(key).toString("utf8");
	if (text.includes("-----BEGIN")) return text;
	return createPrivateKey({ key: Buffer.from(key), format: "der", type: "pkcs8" })
		.export({ format: "pem", type: "pkcs8" })
		.toString();
}
