import { index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

export const dnsRecords = sqliteTable(
	"dns_records",
	{
		id: text("id").primaryKey(),
		tenantId: text("tenant_id").notNull(),
		name: text("name").notNull(),
		type: text("type", { enum: ["A", "AAAA", "CNAME", "TXT"] }).notNull(),
		/** The record set as last written to the provider. */
		values: text("values", { mode: "json" }).$type<string[]>().notNull(),
		ttl: integer("ttl").notNull(),
		provider: text("provider").notNull(),
		updatedAt: integer("updated_at", { mode: "timestamp_ms" }).notNull(),
	},
	(t) => [
		uniqueIndex("dns_records_name_type_idx").on(t.name, t.type),
		index("dns_records_tenant_idx").on(t.tenantId),
	],
);
