import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** Platform API tokens: only a SHA-256 of the secret is kept; the token is shown once. */
export const apiTokens = sqliteTable("api_tokens", {
	id: text("id").primaryKey(),
	name: text("name").notNull(),
	secretHash: text("secret_hash").notNull().unique(),
	scopes: text("scopes", { mode: "json" }).$type<string[]>().notNull(),
	createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
	revokedAt: integer("revoked_at", { mode: "timestamp_ms" }),
});
