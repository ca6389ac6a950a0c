ALTER TABLE `certificates` ADD `renew_attempts` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `certificates` ADD `next_renewal_at` integer;--> statement-breakpoint
ALTER TABLE `certificates` ADD `last_renewal_error` text;--> statement-breakpoint
ALTER TABLE `certificates` ADD `renewal_due_at` integer GENERATED ALWAYS AS (coalesce(next_renewal_at, not_after - (not_after - not_before) / 3)) VIRTUAL;--> statement-breakpoint
CREATE INDEX `certificates_renewal_due_idx` ON `certificates` (`status`,`renewal_due_at`);--> statement-breakpoint
ALTER TABLE `nodes` ADD `last_probe_error` text;--> statement-breakpoint
ALTER TABLE `nodes` ADD `state_changed_at` integer;--> statement-breakpoint
ALTER TABLE `nodes` ADD `suspect_at` integer;--> statement-breakpoint
ALTER TABLE `nodes` ADD `dns_applied_state` text;