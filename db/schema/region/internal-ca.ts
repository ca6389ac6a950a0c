import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** The region's internal CA root: its key never leaves the region, encrypted at rest. */
export const internalCa = sqliteTable("internal_ca", {
	id: text("id").primaryKey(),
	certPem: text("cert_pem").notNull(),
	privateKeyCiphertext: text("private_key_ciphertext").notNull(),
	notAfter: integer("not_after", { mode: "timestamp_ms" }).notNull(),
	createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
});
