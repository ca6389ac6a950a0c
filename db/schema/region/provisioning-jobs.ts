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
		createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
		updatedAt: integer("updated_at", { mode: "timestamp_ms" }).notNull(),
	},
	(t) => [index("provisioning_jobs_due_idx").on(t.state, t.nextAttemptAt)],
);

/** Webhook idempotency: the answer given to an event id, replayed on repeats. */
export const webhookEvents = sqliteTable("webhook_events", {
	id: text("id").primaryKey(),
	tenantId: text("tenant_id").notNull(),
	jobId: text("job_id"),
	response: text("response", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
	receivedAt: integer("received_at", { mode: "timestamp_ms" }).notNull(),
});
