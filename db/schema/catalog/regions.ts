import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** Regions known to the platform, mirrored from configuration at start so every node agrees. */
export const regions = sqliteTable("regions", {
	id: text("id").primaryKey(),
	jurisdiction: text("jurisdiction").notNull(),
	/** Database URL with any credentials removed; the token lives only in configuration. */
	databaseUrl: text("database_url").notNull(),
	updatedAt: integer("updated_at", { mode: "timestamp_ms" }).notNull(),
});
