import { integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

export type ProviderKind = "dns" | "issuer" | "storage" | "relay";

/**
 * A tenant's provider for one kind: either a named instance from configuration, or (byo)
 * the customer's own type and settings, whose credentials are stored encrypted.
 */
export const providerBindings = sqliteTable(
	"provider_bindings",
	{
		tenantId: text("tenant_id").notNull(),
		kind: text("kind").$type<ProviderKind>().notNull(),
		providerName: text("provider_name"),
		type: text("type"),
		settingsCiphertext: text("settings_ciphertext"),
		capabilities: text("capabilities", { mode: "json" }).$type<Record<string, unknown>>(),
		updatedAt: integer("updated_at", { mode: "timestamp_ms" }).notNull(),
	},
	(t) => [primaryKey({ columns: [t.tenantId, t.kind] })],
);
