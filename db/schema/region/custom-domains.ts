import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

export type CustomDomainStatus = "pending" | "verified" | "active" | "removed";

/**
 * A tenant's own domain. A certificate is issued only after the tenant proves control, by a
 * CNAME to its platform hostname or a TXT record carrying the token.
 */
export const customDomains = sqliteTable(
	"custom_domains",
	{
		hostname: text("hostname").primaryKey(),
		tenantId: text("tenant_id").notNull(),
		verification: text("verification", { enum: ["cname", "txt"] }).notNull(),
		token: text("token").notNull(),
		status: text("status").$type<CustomDomainStatus>().notNull(),
		verifiedAt: integer("verified_at", { mode: "timestamp_ms" }),
		createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
		updatedAt: integer("updated_at", { mode: "timestamp_ms" }).notNull(),
	},
	(t) => [index("custom_domains_tenant_idx").on(t.tenantId)],
);
