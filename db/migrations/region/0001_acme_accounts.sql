CREATE TABLE `acme_accounts` (
	`id` text PRIMARY KEY NOT NULL,
	`directory_url` text NOT NULL,
	`account_url` text,
	`private_key_ciphertext` text NOT NULL,
	`created_at` integer NOT NULL
);
