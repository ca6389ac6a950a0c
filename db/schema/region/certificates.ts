import { sql } from "drizzle-orm";
import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

export type CertificateStatus = "active" | "superseded" | "revoked";

export const certificates = sqliteTable(
	"certificates",
	{
		id: text("id").primaryKey(),
		tenantId: text("tenant_id").notNull(),
		hostname: text("hostname").notNull(),
		issuer: text("issuer").notNull(),
		serial: text("serial").notNull(),
		chainPem: text("chain_pem").notNull(),
		/** Envelope-encrypted PKCS#8 key, bound to (tenant, "certificate-key", id). */
		privateKeyCiphertext: text("private_key_ciphertext").notNull(),
		notBefore: integer("not_before", { mode: "timestamp_ms" }).notNull(),
		notAfter: integer("not_after", { mode: "timestamp_ms" }).notNull(),
		status: text("status").$type<CertificateStatus>().notNull(),
		createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
		/** Failed renewal attempts since the last success; drives the persisted backoff. */
		renewAttempts: integer("renew_attempts").notNull().default(0),
		/**
		 * When the renewal job should look at this certificate again (backoff after a failure, the
		 * CA's ARI window, the next ARI poll). Null: when a third of the lifetime remains.
		 */
		nextRenewalAt: integer("next_renewal_at", { mode: "timestamp_ms" }),
		lastRenewalError: text("last_renewal_error"),
		/**
		 * When the certificate is due: `next_renewal_at`, or else not_after minus a third of the
		 * lifetime. Computed by SQLite (virtual) so rows written by any code path are indexed.
		 */
		renewalDueAt: integer("renewal_due_at", { mode: "timestamp_ms" }).generatedAlwaysAs(
			sql`coalesce(next_renewal_at, not_after - (not_after - not_before) / 3)`,
			{ mode: "virtual" },
		),
	},
	(t) => [
		index("certificates_not_after_idx").on(t.status, t.notAfter),
		// The renewal sweep reads `status = 'active' and renewal_due_at <= now` through this index.
		index("certificates_renewal_due_idx").on(t.status, t.renewalDueAt),
		index("certificates_tenant_idx").on(t.tenantId, t.hostname),
	],
);
