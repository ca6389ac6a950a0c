import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * The only tenant-related rows outside a tenant's region: which tenant a hostname belongs to
 * and where that tenant's data lives. Nothing else about the tenant is ever written here.
 */
export const hostnames = sqliteTable(
	"hostnames",
	{
		hostname: text("hostname").primaryKey(),
		tenantId: text("tenant_id").notNull(),
		regionId: text("region_id").notNull(),
		createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
	},
	(t) => [index("hostnames_tenant_idx").on(t.tenantId)],
);
