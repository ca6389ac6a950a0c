import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** Hostnames the edge serves for tenants of this region. */
export const routes = sqliteTable(
	"routes",
	{
		hostname: text("hostname").primaryKey(),
		tenantId: text("tenant_id").notNull(),
		certificateId: text("certificate_id"),
		updatedAt: integer("updated_at", { mode: "timestamp_ms" }).notNull(),
	},
	(t) => [index("routes_tenant_idx").on(t.tenantId)],
);

/** Monotonic counter bumped in the same transaction as every route-affecting change. */
export const routeVersion = sqliteTable("route_version", {
	id: integer("id").primaryKey(),
	version: integer("version").notNull(),
	updatedAt: integer("updated_at", { mode: "timestamp_ms" }).notNull(),
});
