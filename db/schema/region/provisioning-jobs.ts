import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

export const provisioningJobs = sqliteTable(
	"provisioning_jobs",
	{
		id: text("id").primaryKey(),
		tenantId: text("tenant_id").notNull(),
		kind: text("kind").notNull(),
		step: text("step").notNull(),
		state: text("state", { enum: ["pending", "running", "succeeded", "failed"] }).notNull(),
		input: text("input", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
		attempts: integer("attempts").notNull().default(0),
		nextAttemptAt: integer("next_attempt_at", { mode: "timestamp_ms" }),
		lastError: text("last_error"),
		/** The webhook event that created the job, if any. */
		eventId: text("event_id"),
		/** Single-writer execution: the runner holding the job and until when. */
		leaseHolder: text("lease_holder"),
		leaseExpiresAt: integer("lease_expires_at", { mode: "timestamp_ms" }),
		result: text("result", { mode: "json" }).$type<Record<string, unknown>>(),
		createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
		updatedAt: integer("updated_at", { mode: "timestamp_ms" }).notNull(),
	},
	(t) => [index("provisioning_jobs_due_idx").on(t.state, t.nextAttemptAt)],
);

/** Webhook idempotency: the answer given to an event id, replayed on repeats. */
export const webhookEvents = sqliteTable("webhook_events", {
	id: text("id").primaryKey(),
	platformId: text("platform_id").notNull(),
	tenantId: text("tenant_id").notNull(),
	/** SHA-256 of the raw body: the same id with another body is refused, not replayed. */
	bodyHash: text("body_hash").notNull(),
	jobId: text("job_id"),
	response: text("response", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
	receivedAt: integer("received_at", { mode: "timestamp_ms" }).notNull(),
});

/** Signed notifications to the platform (e.g. "endpoint live"), delivered with retries. */
export const outboundWebhooks = sqliteTable(
	"outbound_webhooks",
	{
		id: text("id").primaryKey(),
		platformId: text("platform_id").notNull(),
		tenantId: text("tenant_id").notNull(),
		type: text("type").notNull(),
		payload: text("payload", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
		attempts: integer("attempts").notNull().default(0),
		nextAttemptAt: integer("next_attempt_at", { mode: "timestamp_ms" }),
		deliveredAt: integer("delivered_at", { mode: "timestamp_ms" }),
		lastError: text("last_error"),
		createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
	},
	(t) => [index("outbound_webhooks_due_idx").on(t.deliveredAt, t.nextAttemptAt)],
);
