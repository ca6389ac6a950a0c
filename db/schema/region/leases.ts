import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** Single-writer leases for jobs and per-item work (renewals, failovers). */
export const leases = sqliteTable("leases", {
	name: text("name").primaryKey(),
	holder: text("holder").notNull(),
	expiresAt: integer("expires_at", { mode: "timestamp_ms" }).notNull(),
});
