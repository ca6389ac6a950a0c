import { describe, expect, it } from "vitest";
import {
	redactSecret,
	resolveSecretSetting,
	secretSettingSchema,
} from "../../functions/providers/secret-setting";

describe("secret settings", () => {
	it("takes a literal string as it is", () => {
		expect(resolveSecretSetting("k-123", {}, "apiKey")).toBe("k-123");
	});

	it("reads { env } from the environment it is given, trimming a trailing newline", () => {
		expect(
			resolveSecretSetting({ env: "PDNS_API_KEY" }, { PDNS_API_KEY: "k-456\n" }, "apiKey"),
		).toBe("k-456");
	});

	it("names the variable and the setting when the variable is missing or blank", () => {
		for (const env of [undefined, {}, { PDNS_API_KEY: "" }, { PDNS_API_KEY: " \n" }]) {
			expect(() => resolveSecretSetting({ env: "PDNS_API_KEY" }, env, "apiKey")).toThrow(
				"settings.apiKey: environment variable PDNS_API_KEY is not set (it must hold the apiKey)",
			);
		}
	});

	it("accepts a string or { env: NAME } and nothing else, without echoing what it refused", () => {
		const secret = `s-${crypto.randomUUID()}`;
		expect(secretSettingSchema.safeParse(secret).success).toBe(true);
		expect(secretSettingSchema.safeParse({ env: "CLOUDFLARE_API_TOKEN" }).success).toBe(true);
		for (const bad of ["", { env: "lower" }, { env: "OK", extra: secret }, { file: secret }, 42]) {
			const result = secretSettingSchema.safeParse(bad);
			expect(result.success).toBe(false);
			expect(JSON.stringify(result.error?.issues)).not.toContain(secret);
		}
	});

	it("redacts every occurrence of a secret from text a server sent back", () => {
		expect(redactSecret("bad key abc in abc", "abc")).toBe("bad key [redacted] in [redacted]");
		expect(redactSecret("nothing to hide", "")).toBe("nothing to hide");
	});
});
