import { z } from "zod";

const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;

/**
 * A credential in provider settings: `{ env: "NAME" }` (what a config file should hold) or a
 * literal string (tests, or a config assembled in memory from another secret store).
 */
export const secretSettingSchema = z.union(
	[
		z.strictObject({
			env: z.string().regex(ENV_NAME, "must be an environment variable name"),
		}),
		z.string().min(1, "must not be empty"),
	],
	{ error: 'must be a string or { env: "VARIABLE_NAME" }' },
);
export type SecretSetting = z.infer<typeof secretSettingSchema>;

/**
 * The secret's value, read from `env` when the setting names a variable. Called once, when the
 * provider is created, so a missing variable stops the start; the error names the variable and
 * the setting, never a value.
 */
export function resolveSecretSetting(
	setting: SecretSetting,
	env: Readonly<Record<string, string | undefined>> | undefined,
	settingName: string,
): string {
	if (typeof setting === "string") return setting;
	const value = env?.[setting.env];
	if (value === undefined || value.trim() === "") {
		throw new Error(
			`settings.${settingName}: environment variable ${setting.env} is not set (it must hold the ${settingName})`,
		);
	}
	return value.trim();
}

/** Replaces every occurrence of `secret` in text a server sent back, before it reaches a message. */
export function redactSecret(text: string, secret: string): string {
	return secret.length === 0 ? text : text.split(secret).join("[redacted]");
}
