import type { CastellanConfig } from "../config/schema";
import type { WebhookSecret } from "../services/context";

/**
 * The webhook secrets of every platform, with `{ env: NAME }` resolved from the environment
 * given by the entry. Unset variables are reported by name (never by value) and skipped.
 */
export function resolveWebhookSecrets(
	config: CastellanConfig,
	env: Readonly<Record<string, string | undefined>>,
): { secrets: WebhookSecret[]; missing: string[] } {
	const secrets: WebhookSecret[] = [];
	const missing: string[] = [];
	for (const platform of config.webhooks.platforms) {
		for (const value of platform.secrets) {
			if (typeof value === "string") secrets.push({ owner: platform.id, secret: value });
			else if (env[value.env])
				secrets.push({ owner: platform.id, secret: env[value.env] as string });
			else missing.push(value.env);
		}
	}
	return { secrets, missing };
}
