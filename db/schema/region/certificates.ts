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
	},
	(t) => [
		index("certificates_not_after_idx").on(t.status, t.notAfter),
		index("certificates_tenant_idx").on(t.tenantId, t.hostname),
	],
);
