CREATE TABLE `audit_events` (
	`chain` text NOT NULL,
	`seq` integer NOT NULL,
	`id` text NOT NULL,
	`at` integer NOT NULL,
	`actor` text NOT NULL,
	`action` text NOT NULL,
	`subject` text NOT NULL,
	`data` text NOT NULL,
	`prev_hash` text NOT NULL,
	`hash` text NOT NULL,
	PRIMARY KEY(`chain`, `seq`)
);
--> statement-breakpoint
CREATE UNIQUE INDEX `audit_events_id_unique` ON `audit_events` (`id`);--> statement-breakpoint
CREATE TABLE `audit_heads` (
	`chain` text PRIMARY KEY NOT NULL,
	`seq` integer NOT NULL,
	`hash` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `certificates` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`hostname` text NOT NULL,
	`issuer` text NOT NULL,
	`serial` text NOT NULL,
	`chain_pem` text NOT NULL,
	`private_key_ciphertext` text NOT NULL,
	`not_before` integer NOT NULL,
	`not_after` integer NOT NULL,
	`status` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `certificates_not_after_idx` ON `certificates` (`status`,`not_after`);--> statement-breakpoint
CREATE INDEX `certificates_tenant_idx` ON `certificates` (`tenant_id`,`hostname`);--> statement-breakpoint
CREATE TABLE `custom_domains` (
	`hostname` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`verification` text NOT NULL,
	`token` text NOT NULL,
	`status` text NOT NULL,
	`verified_at` integer,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `custom_domains_tenant_idx` ON `custom_domains` (`tenant_id`);--> statement-breakpoint
CREATE TABLE `dns_records` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`name` text NOT NULL,
	`type` text NOT NULL,
	`values` text NOT NULL,
	`ttl` integer NOT NULL,
	`provider` text NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `dns_records_name_type_idx` ON `dns_records` (`name`,`type`);--> statement-breakpoint
CREATE INDEX `dns_records_tenant_idx` ON `dns_records` (`tenant_id`);--> statement-breakpoint
CREATE TABLE `internal_ca` (
	`id` text PRIMARY KEY NOT NULL,
	`cert_pem` text NOT NULL,
	`private_key_ciphertext` text NOT NULL,
	`not_after` integer NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `leases` (
	`name` text PRIMARY KEY NOT NULL,
	`holder` text NOT NULL,
	`expires_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `instances` (
	`id` text PRIMARY KEY NOT NULL,
	`node_id` text NOT NULL,
	`url` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `instances_node_idx` ON `instances` (`node_id`);--> statement-breakpoint
CREATE TABLE `nodes` (
	`id` text PRIMARY KEY NOT NULL,
	`region_id` text NOT NULL,
	`name` text NOT NULL,
	`address` text NOT NULL,
	`health_url` text,
	`dedicated_tenant_id` text,
	`state` text NOT NULL,
	`consecutive_failures` integer DEFAULT 0 NOT NULL,
	`consecutive_successes` integer DEFAULT 0 NOT NULL,
	`last_probe_at` integer,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `nodes_name_unique` ON `nodes` (`name`);--> statement-breakpoint
CREATE INDEX `nodes_region_idx` ON `nodes` (`region_id`);--> statement-breakpoint
CREATE TABLE `provider_bindings` (
	`tenant_id` text NOT NULL,
	`kind` text NOT NULL,
	`provider_name` text,
	`type` text,
	`settings_ciphertext` text,
	`capabilities` text,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`tenant_id`, `kind`)
);
--> statement-breakpoint
CREATE TABLE `outbound_webhooks` (
	`id` text PRIMARY KEY NOT NULL,
	`platform_id` text NOT NULL,
	`tenant_id` text NOT NULL,
	`type` text NOT NULL,
	`payload` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`next_attempt_at` integer,
	`delivered_at` integer,
	`last_error` text,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `outbound_webhooks_due_idx` ON `outbound_webhooks` (`delivered_at`,`next_attempt_at`);--> statement-breakpoint
CREATE TABLE `provisioning_jobs` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`kind` text NOT NULL,
	`step` text NOT NULL,
	`state` text NOT NULL,
	`input` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`next_attempt_at` integer,
	`last_error` text,
	`event_id` text,
	`lease_holder` text,
	`lease_expires_at` integer,
	`result` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `provisioning_jobs_due_idx` ON `provisioning_jobs` (`state`,`next_attempt_at`);--> statement-breakpoint
CREATE TABLE `webhook_events` (
	`id` text PRIMARY KEY NOT NULL,
	`platform_id` text NOT NULL,
	`tenant_id` text NOT NULL,
	`body_hash` text NOT NULL,
	`job_id` text,
	`response` text NOT NULL,
	`received_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `route_version` (
	`id` integer PRIMARY KEY NOT NULL,
	`version` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `routes` (
	`hostname` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`certificate_id` text,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `routes_tenant_idx` ON `routes` (`tenant_id`);--> statement-breakpoint
CREATE TABLE `tenants` (
	`id` text PRIMARY KEY NOT NULL,
	`slug` text NOT NULL,
	`profile` text NOT NULL,
	`home_region` text NOT NULL,
	`allowed_regions` text NOT NULL,
	`status` text NOT NULL,
	`platform_id` text DEFAULT 'default' NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `tenants_slug_unique` ON `tenants` (`slug`);