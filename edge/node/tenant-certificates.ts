import { createPrivateKey } from "node:crypto";
import { createSecureContext, type SecureContext } from "node:tls";
import { eq, sql } from "drizzle-orm";
import { certificates } from "../../db/schema/region";
import type { ControlStore, RegionHandle } from "../../db/store";
import type { Clock, Logger } from "../../functions/runtime";
import { certificateKeyBinding } from "../../functions/secrets/bindings";
import type { SecretBox } from "../../functions/secrets/secret-box";
import { normalizeServerName } from "../core/host-name";
import type { RouteSnapshot, SnapshotHost } from "../core/route-snapshot";

/**
 * The TLS certificate of every routed hostname. A key is decrypted, and its SecureContext
 * built, on the first handshake that needs it (so a start with 100,000 routes does not
 * decrypt 100,000 keys before serving), then reused until the certificate changes.
 */
export class CertificateSet {
	readonly #byHost: Map<string, CertificateMeta>;
	/** By certificate id; null remembers an unusable certificate so it is logged once. */
	readonly #contexts: Map<string, Promise<SecureContext | null>>;

	constructor(
		byHost: Map<string, CertificateMeta>,
		contexts: Map<string, Promise<SecureContext | null>>,
		private readonly secrets: SecretBox,
		private readonly logger: Logger,
	) {
		this.#byHost = byHost;
		this.#contexts = contexts;
	}

	/** The context for an SNI name; undefined fails the handshake (there is no default certificate). */
	async contextFor(serverName: string): Promise<SecureContext | undefined> {
		const name = this.#byHost.has(serverName) ? serverName : normalizeServerName(serverName);
		const meta = name === undefined ? undefined : this.#byHost.get(name);
		if (!meta) return undefined;
		let context = this.#contexts.get(meta.id);
		if (!context) {
			context = this.#build(meta);
			this.#contexts.set(meta.id, context);
		}
		return (await context) ?? undefined;
	}

	get size(): number {
		return this.#byHost.size;
	}

	/** @internal used by the next load to keep contexts already built. */
	carryOver(): Map<string, Promise<SecureContext | null>> {
		return this.#contexts;
	}

	async #build(meta: CertificateMeta): Promise<SecureContext | null> {
		let row: { chainPem: string; ciphertext: string } | undefined;
		try {
			[row] = await meta.region.db
				.select({ chainPem: certificates.chainPem, ciphertext: certificates.privateKeyCiphertext })
				.from(certificates)
				.where(eq(certificates.id, meta.id))
				.limit(1);
		} catch (err) {
			// A store hiccup is not the certificate's fault: forget it so the next handshake retries.
			this.#contexts.delete(meta.id);
			this.logger.log("warn", "edge: cannot read certificate", {
				certificateId: meta.id,
				reason: err instanceof Error ? err.message : String(err),
			});
			return null;
		}
		try {
			if (!row) throw new Error("the certificate row is gone");
			const key = await this.secrets.open(
				row.ciphertext,
				certificateKeyBinding(meta.tenantId, meta.id),
			);
			return createSecureContext({ cert: row.chainPem, key: toPem(key) });
		} catch (err) {
			// Its hostname then fails the handshake: better than serving someone else's certificate.
			this.logger.log("error", "edge: unusable certificate", {
				certificateId: meta.id,
				tenantId: meta.tenantId,
				reason: err instanceof Error ? err.message : String(err),
			});
			return null;
		}
	}
}

export interface LoadCertificatesOptions {
	store: ControlStore;
	secrets: SecretBox;
	snapshot: RouteSnapshot;
	clock: Clock;
	logger: Logger;
	/** The set in use: contexts it already built are kept. */
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

/** Picks the active certificate of every host in the snapshot (metadata only: nothing decrypted). */
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

	const byHost = new Map<string, CertificateMeta>();
	const now = options.clock.now().getTime();
	for (const host of snapshot.hosts) {
		const hostname = normalizeServerName(host.hostname);
		const meta = hostname && pickCertificate(host, hostname, byId, byTenantHost, now);
		if (hostname && meta) byHost.set(hostname, meta);
	}
	const kept = new Set([...byHost.values()].map((m) => m.id));
	const contexts = new Map<string, Promise<SecureContext | null>>();
	for (const [id, context] of options.previous?.carryOver() ?? [])
		if (kept.has(id)) contexts.set(id, context);
	return new CertificateSet(byHost, contexts, secrets, logger);
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

/** Keys are sealed as PKCS#8 PEM text; raw PKCS#8 DER is accepted too. */
function toPem(key: Uint8Array): string {
	const text = Buffer.from(key).toString("utf8");
	if (text.includes("-----BEGIN")) return text;
	return createPrivateKey({ key: Buffer.from(key), format: "der", type: "pkcs8" })
		.export({ format: "pem", type: "pkcs8" })
		.toString();
}
