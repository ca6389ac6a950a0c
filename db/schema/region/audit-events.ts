import { integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * Hash-chained audit log. One chain per tenant (chain = tenant id) and one platform chain
 * per region (chain = "platform"). hash = SHA-256 over the canonical event including prevHash.
 */
export const auditEvents = sqliteTable(
	"audit_events",
	{
		chain: text("chain").notNull(),
		seq: integer("seq").notNull(),
		id: text("id").notNull().unique(),
		at: integer("at", { mode: "timestamp_ms" }).notNull(),
		actor: text("actor").notNull(),
		action: text("action").notNull(),
		subject: text("subject").notNull(),
		data: text("data", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
		prevHash: text("prev_hash").notNull(),
		hash: text("hash").notNull(),
	},
	(t) => [primaryKey({ columns: [t.chain, t.seq] })],
);

/** Last event of each chain, written in the same transaction, so a truncated tail is detected. */
export const auditHeads = sqliteTable("audit_heads", {
	chain: text("chain").primaryKey(),
	seq: integer("seq").notNull(),
	hash: text("hash").notNull(),
});
