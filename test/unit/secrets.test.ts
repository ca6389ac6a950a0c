import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { decodeBase64, decodeBase64Url, encodeBase64Url } from "../../functions/secrets/base64";
import {
	certificateKeyBinding,
	internalCaKeyBinding,
	providerSettingsBinding,
} from "../../functions/secrets/bindings";
import {
	ciphertextKeyId,
	createSecretBox,
	MalformedCiphertextError,
	SecretDecryptError,
	UnknownMasterKeyError,
} from "../../functions/secrets/envelope";
import {
	encodeMasterKey,
	generateMasterKey,
	InvalidMasterKeyError,
	MasterKeyring,
	parseMasterKeyList,
	parseMasterKeyring,
} from "../../functions/secrets/keyring";

const BASE64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const binding = certificateKeyBinding("ten_acme", "crt_1");
const PEM = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIBdZ\n-----END PRIVATE KEY-----\n";

function kidOf(key: Uint8Array): string {
	return createHash("sha256").update(key).digest("hex").slice(0, 16);
}

async function ring(...keys: Uint8Array[]) {
	return MasterKeyring.fromKeys(keys);
}

/** Every way a key could leak into a message: its base64, base64url and hex forms. */
function keyForms(key: Uint8Array): string[] {
	return [encodeMasterKey(key), encodeBase64Url(key), Buffer.from(key).toString("hex")];
}

async function failure(promise: Promise<unknown>): Promise<Error> {
	try {
		await promise;
	} catch (err) {
		return err as Error;
	}
	throw new Error("expected a failure");
}

describe("envelope encryption", () => {
	const keyA = generateMasterKey();
	const keyB = generateMasterKey();

	it("round-trips text and bytes", async () => {
		const box = createSecretBox(await ring(keyA));
		expect(await box.openText(await box.seal(PEM, binding), binding)).toBe(PEM);
		const bytes = new Uint8Array([0, 1, 2, 255, 254]);
		expect(await box.open(await box.seal(bytes, binding), binding)).toEqual(bytes);
		expect(await box.openText(await box.seal("", binding), binding)).toBe("");
	});

	it("writes cs1.<kid>.<wrapped key>.<data>, with a fresh data key and IV each time", async () => {
		const box = createSecretBox(await ring(keyA));
		const first = await box.seal(PEM, binding);
		const second = await box.seal(PEM, binding);
		expect(first).toMatch(/^cs1\.[0-9a-f]{16}\.[A-Za-z0-9_-]{80}\.[A-Za-z0-9_-]+$/);
		const [, kid, wrapped, sealed] = first.split(".") as [string, string, string, string];
		expect(kid).toBe(kidOf(keyA));
		expect(ciphertextKeyId(first)).toBe(kidOf(keyA));
		expect(decodeBase64Url(wrapped)).toHaveLength(12 + 32 + 16);
		expect(decodeBase64Url(sealed)).toHaveLength(12 + PEM.length + 16);
		const [, , wrapped2, sealed2] = second.split(".");
		expect(wrapped2).not.toBe(wrapped);
		expect(sealed2).not.toBe(sealed);
		expect(first).not.toContain("PRIVATE");
	});

	it("refuses a ciphertext copied to another tenant, purpose or row", async () => {
		const box = createSecretBox(await ring(keyA));
		const ciphertext = await box.seal(PEM, certificateKeyBinding("ten_acme", "crt_1"));
		const elsewhere = [
			certificateKeyBinding("ten_other", "crt_1"),
			certificateKeyBinding("ten_acme", "crt_2"),
			{ ...certificateKeyBinding("ten_acme", "crt_1"), purpose: "provider-settings" },
			providerSettingsBinding("ten_acme", "dns"),
			internalCaKeyBinding("eu-central", "crt_1"),
		];
		for (const other of elsewhere) {
			const err = await failure(box.open(ciphertext, other));
			expect(err).toBeInstanceOf(SecretDecryptError);
			expect(err.message).toBe(
				`cannot decrypt ${other.purpose} for ${other.scope}/${other.ref}: the ciphertext does not belong here or was altered`,
			);
		}
		// The binding is JSON-encoded, so shifting a separator between fields is a different binding.
		const tricky = await box.seal(PEM, { scope: "a", purpose: "p", ref: "b/c" });
		await expect(box.open(tricky, { scope: "a/b", purpose: "p", ref: "c" })).rejects.toThrow(
			SecretDecryptError,
		);
	});

	it("detects a change to any character, and to any byte of either layer", async () => {
		const box = createSecretBox(await ring(keyA, keyB));
		const ciphertext = await box.seal("short secret", binding);
		const expected = [MalformedCiphertextError, UnknownMasterKeyError, SecretDecryptError];
		for (let i = 0; i < ciphertext.length; i++) {
			for (const replacement of BASE64URL_ALPHABET + ".") {
				if (ciphertext[i] === replacement) continue;
				const altered = ciphertext.slice(0, i) + replacement + ciphertext.slice(i + 1);
				const err = await failure(box.open(altered, binding));
				expect(
					expected.some((type) => err instanceof type),
					`char ${i}: ${err}`,
				).toBe(true);
			}
		}
		const [version, kid, ...layers] = ciphertext.split(".") as [string, string, string, string];
		for (const layer of [0, 1]) {
			const bytes = decodeBase64Url(layers[layer]!)!;
			for (let i = 0; i < bytes.length; i++) {
				const flipped = new Uint8Array(bytes);
				flipped[i]! ^= 0x01;
				const parts = [...layers];
				parts[layer] = encodeBase64Url(flipped);
				const altered = [version, kid, ...parts].join(".");
				await expect(box.open(altered, binding), `layer ${layer} byte ${i}`).rejects.toThrow(
					SecretDecryptError,
				);
			}
		}
	});

	it("refuses a ciphertext relabelled with another key of the keyring", async () => {
		const box = createSecretBox(await ring(keyA, keyB));
		const ciphertext = await box.seal(PEM, binding);
		const relabelled = ciphertext.replace(kidOf(keyA), kidOf(keyB));
		expect(relabelled).not.toBe(ciphertext);
		await expect(box.open(relabelled, binding)).rejects.toThrow(SecretDecryptError);
	});

	it("names both the missing key and the configured ones when the kid is unknown", async () => {
		const sealed = await createSecretBox(await ring(keyA)).seal(PEM, binding);
		const err = await failure(createSecretBox(await ring(keyB)).open(sealed, binding));
		expect(err).toBeInstanceOf(UnknownMasterKeyError);
		expect(err.message).toBe(
			`cannot decrypt certificate-key for ten_acme/crt_1: this secret was sealed with master key ${kidOf(keyA)}, which is not in the configured keyring (keys: ${kidOf(keyB)}): wrong master key?`,
		);
	});

	it("opens with an older key of the keyring but seals with the first", async () => {
		const sealedWithA = await createSecretBox(await ring(keyA)).seal(PEM, binding);
		const rotated = createSecretBox(await ring(keyB, keyA));
		expect(await rotated.openText(sealedWithA, binding)).toBe(PEM);
		expect(ciphertextKeyId(await rotated.seal(PEM, binding))).toBe(kidOf(keyB));
	});

	it("calls malformed input malformed, without quoting it", async () => {
		const box = createSecretBox(await ring(keyA));
		const valid = await box.seal(PEM, binding);
		const [, kid, wrapped, sealed] = valid.split(".");
		const inputs = [
			"",
			"my-database-password",
			`cs2.${kid}.${wrapped}.${sealed}`,
			`cs1.${kid}.${wrapped}`,
			`cs1.${kid}.${wrapped}.${sealed}.extra`,
			`cs1.NOT-A-KID.${wrapped}.${sealed}`,
			`cs1.${kid}.${wrapped?.slice(0, 40)}.${sealed}`,
			`cs1.${kid}.${wrapped}.AAAA`,
			`cs1.${kid}.${wrapped}.${sealed}=`,
		];
		for (const input of inputs) {
			const err = await failure(box.open(input, binding));
			expect(err, JSON.stringify(input)).toBeInstanceOf(MalformedCiphertextError);
			expect(err.message).toMatch(/^cannot decrypt certificate-key for ten_acme\/crt_1: /);
			if (input !== "") expect(err.message).not.toContain(input);
		}
		expect(() => ciphertextKeyId("my-database-password")).toThrow(MalformedCiphertextError);
	});

	it("refuses to return bytes that are not UTF-8 as text", async () => {
		const box = createSecretBox(await ring(keyA));
		const ciphertext = await box.seal(new Uint8Array([0xff, 0xfe]), binding);
		await expect(box.openText(ciphertext, binding)).rejects.toThrow(MalformedCiphertextError);
	});

	it("refuses an empty binding field", async () => {
		const box = createSecretBox(await ring(keyA));
		await expect(
			box.seal(PEM, { scope: "ten_acme", purpose: "certificate-key", ref: "" }),
		).rejects.toThrow("ref must be a non-empty string");
	});
});

describe("master keyring", () => {
	it("derives the kid from SHA-256 of the key and keeps the listed order", async () => {
		const [a, b] = [generateMasterKey(), generateMasterKey()];
		const keyring = await ring(a, b);
		expect(keyring.kids).toEqual([kidOf(a), kidOf(b)]);
		expect(keyring.current.kid).toBe(kidOf(a));
		expect(keyring.find(kidOf(b))?.kid).toBe(kidOf(b));
		expect(keyring.find("0000000000000000")).toBeUndefined();
		expect(keyring.current.key.extractable).toBe(false);
	});

	it("reads a key file: one key per line, blank lines and comments skipped", async () => {
		const [a, b] = [generateMasterKey(), generateMasterKey()];
		const text = `# current\n${encodeMasterKey(a)}\n\n  # old\r\n  ${encodeMasterKey(b)}  \n`;
		const keyring = await parseMasterKeyring(text, { format: "lines", source: "/keys" });
		expect(keyring.kids).toEqual([kidOf(a), kidOf(b)]);
	});

	it("reads an environment value: comma-separated keys", async () => {
		const [a, b] = [generateMasterKey(), generateMasterKey()];
		const text = ` ${encodeMasterKey(a)} ,${encodeMasterKey(b)},`;
		const keyring = await parseMasterKeyring(text, { format: "comma", source: "KEYS" });
		expect(keyring.kids).toEqual([kidOf(a), kidOf(b)]);
	});

	it("names the bad entry by position and never prints it", () => {
		const good = encodeMasterKey(generateMasterKey());
		const short = encodeMasterKey(generateMasterKey().subarray(0, 16));
		const notBase64 = `${good.slice(0, 40)}!!!=`;
		const cases: Array<[string, "lines" | "comma", string, string]> = [
			[
				`${good}\n# c\n${short}\n`,
				"lines",
				"key 2 (line 3) of /etc/keys decodes to 16 bytes",
				short,
			],
			[
				`${good}\n\n${notBase64}`,
				"lines",
				"key 2 (line 3) of /etc/keys is not valid base64",
				notBase64,
			],
			[`${good},${short}`, "comma", "key 2 of KEYS decodes to 16 bytes", short],
			[`${notBase64}`, "comma", "key 1 of KEYS is not valid base64", notBase64],
			[`${good},${good}`, "comma", "key 2 of KEYS repeats key 1", good],
		];
		for (const [text, format, message, entry] of cases) {
			const source = format === "lines" ? "/etc/keys" : "KEYS";
			let err: unknown;
			try {
				parseMasterKeyList(text, { format, source });
			} catch (e) {
				err = e;
			}
			expect(err).toBeInstanceOf(InvalidMasterKeyError);
			expect((err as Error).message).toContain(message);
			expect((err as Error).message).not.toContain(entry);
			expect((err as Error).message).not.toContain(entry.slice(0, 12));
		}
	});

	it("refuses an empty list, saying what it expected", () => {
		expect(() => parseMasterKeyList("# nothing\n\n", { format: "lines", source: "/k" })).toThrow(
			"no master key in /k (expected one base64 key per line)",
		);
		expect(() => parseMasterKeyList(" , ", { format: "comma", source: "KEYS" })).toThrow(
			"no master key in KEYS (expected comma-separated base64 keys)",
		);
	});

	it("decodes only canonical base64, so no two texts carry the same key", () => {
		const key = generateMasterKey();
		const text = encodeMasterKey(key);
		expect(decodeBase64(text)).toEqual(key);
		// The last character before "=" carries two unused bits; setting them must not decode.
		const last = text.at(-2)!;
		const alphabet = BASE64URL_ALPHABET.replace("-", "+").replace("_", "/");
		const sibling = alphabet[alphabet.indexOf(last) ^ 1]!;
		expect(decodeBase64(`${text.slice(0, -2)}${sibling}=`)).toBeUndefined();
		expect(decodeBase64(`${text} `)).toBeUndefined();
		expect(decodeBase64(text.slice(0, -1))).toBeUndefined();
	});
});

describe("no key material in error messages", () => {
	it("holds for every error the secrets code raises", async () => {
		const [a, b] = [generateMasterKey(), generateMasterKey()];
		const boxA = createSecretBox(await ring(a));
		const boxB = createSecretBox(await ring(b));
		const sealed = await boxA.seal(PEM, binding);
		const messages = [
			(await failure(boxB.open(sealed, binding))).message,
			(await failure(boxA.open(sealed, certificateKeyBinding("ten_x", "crt_1")))).message,
			(await failure(boxA.open(sealed.slice(0, -3), binding))).message,
			(await failure(MasterKeyring.fromKeys([a.subarray(0, 31)]))).message,
		];
		for (const text of [`${encodeMasterKey(a)}x`, `${encodeMasterKey(a)},${encodeMasterKey(a)}`]) {
			try {
				parseMasterKeyList(text, { format: "comma", source: "KEYS" });
			} catch (err) {
				messages.push((err as Error).message);
			}
		}
		expect(messages).toHaveLength(6);
		for (const message of messages) {
			expect(message).not.toContain(PEM.slice(28, 50));
			for (const form of [...keyForms(a), ...keyForms(b)]) {
				expect(message).not.toContain(form.slice(0, 16));
			}
		}
	});
});
