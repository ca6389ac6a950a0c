import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

export type TenantStatus = "provisioning" | "active" | "suspended" | "deleted";

export const tenants = sqliteTable("tenants", {
	id: text("id").primaryKey(),
	slug: text("slug").notNull().unique(),
	profile: text("profile", { enum: ["standard", "sovereign", "byo"] }).notNull(),
	homeRegion: text("home_region").notNull(),
	/** Regions the tenant's traffic may be served from, home region first. */
	allowedRegions: text("allowed_regions", { mode: "json" }).$type<string[]>().notNull(),
	status: text("status").$type<TenantStatus>().notNull(),
	/** The platform (webhook sender) that owns the tenant; another platform cannot change it. */
	platformId: text("platform_id").notNull().default("default"),
	createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
	updatedAt: integer("updated_at", { mode: "timestamp_ms" }).notNull(),
});
