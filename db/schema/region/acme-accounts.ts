import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * One ACME account per (issuer name, region): its key is created on first use and sealed, so it
 * stays in the region like every other key. `accountUrl` is set once the CA has registered it.
 */
export const acmeAccounts = sqliteTable("acme_accounts", {
	/** `<issuer name>:<region id>` */
	id: text("id").primaryKey(),
	/** The directory the account is registered with; another directory means another account. */
	directoryUrl: text("directory_url").notNull(),
	accountUrl: text("account_url"),
	/** Envelope-encrypted PKCS#8 P-256 key, bound to (platform:<region>, "acme-account-key", id). */
	privateKeyCiphertext: text("private_key_ciphertext").notNull(),
	createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
});
