import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

export type HealthState = "unknown" | "healthy" | "unhealthy";

/** A data-plane machine in this region: what DNS points at and what health probes check. */
export const nodes = sqliteTable(
	"nodes",
	{
		id: text("id").primaryKey(),
		regionId: text("region_id").notNull(),
		name: text("name").notNull().unique(),
		/** Public address DNS records point at (IPv4 or IPv6). */
		address: text("address").notNull(),
		healthUrl: text("health_url"),
		/** Set for tenant-dedicated nodes, which form their own segment. */
		dedicatedTenantId: text("dedicated_tenant_id"),
		state: text("state").$type<HealthState>().notNull(),
		consecutiveFailures: integer("consecutive_failures").notNull().default(0),
		consecutiveSuccesses: integer("consecutive_successes").notNull().default(0),
		lastProbeAt: integer("last_probe_at", { mode: "timestamp_ms" }),
		/** Why the last probe failed (null after a success). */
		lastProbeError: text("last_probe_error"),
		/** When `state` last changed (health transitions only). */
		stateChangedAt: integer("state_changed_at", { mode: "timestamp_ms" }),
		/** Set when the edge saw a connection fail: the next fast probe pass checks the node now. */
		suspectAt: integer("suspect_at", { mode: "timestamp_ms" }),
		/**
		 * The state whose DNS failover has been fully applied. Differs from `state` (or is null)
		 * while a failover is pending, so a crash in the middle is finished on restart.
		 */
		dnsAppliedState: text("dns_applied_state").$type<HealthState>(),
		updatedAt: integer("updated_at", { mode: "timestamp_ms" }).notNull(),
	},
	(t) => [index("nodes_region_idx").on(t.regionId)],
);

/** An origin the edge proxies to: one data-plane service endpoint on a node. */
export const instances = sqliteTable(
	"instances",
	{
		id: text("id").primaryKey(),
		nodeId: text("node_id").notNull(),
		/** Origin base URL, e.g. http://10.200.0.5:9000 */
		url: text("url").notNull(),
		createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
	},
	(t) => [index("instances_node_idx").on(t.nodeId)],
);
