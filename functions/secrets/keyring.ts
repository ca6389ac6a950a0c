import { decodeBase64, encodeBase64 } from "./base64";

/** A master key is 32 random bytes (AES-256), written as base64 (44 characters). */
export const MASTER_KEY_BYTES = 32;

export interface MasterKey {
	/** First 16 hex characters of SHA-256 of the key bytes: names the key without revealing it. */
	readonly kid: string;
	/** AES-256-GCM key, imported as non-extractable, so the bytes cannot be read back. */
	readonly key: CryptoKey;
}

/**
 * The master keys this process knows. The first is current and seals new secrets; the others
 * only open secrets sealed before a rotation, until `rewrapAll` has moved them to the current key.
 */
export class MasterKeyring {
	readonly #keys: readonly MasterKey[];

	private constructor(keys: readonly MasterKey[]) {
		this.#keys = keys;
	}

	/** Imports raw 32-byte keys, current first. */
	static async fromKeys(keys: readonly Uint8Array[]): Promise<MasterKeyring> {
		if (keys.length === 0)
			throw new InvalidMasterKeyError("a keyring needs at least one master key");
		const imported: MasterKey[] = [];
		for (const [i, bytes] of keys.entries()) {
			if (bytes.length !== MASTER_KEY_BYTES) {
				throw new InvalidMasterKeyError(
					`master key ${i + 1} is ${bytes.length} bytes; a master key is ${MASTER_KEY_BYTES} bytes`,
				);
			}
			const kid = await masterKeyId(bytes);
			const key = await crypto.subtle.importKey("raw", copy(bytes), "AES-GCM", false, [
				"encrypt",
				"decrypt",
			]);
			imported.push({ kid, key });
		}
		return new MasterKeyring(imported);
	}

	/** The key that seals new secrets. */
	get current(): MasterKey {
		return this.#keys[0]!;
	}

	find(kid: string): MasterKey | undefined {
		return this.#keys.find((k) => k.kid === kid);
	}

	/** Key ids, current first: safe to print. */
	get kids(): string[] {
		return this.#keys.map((k) => k.kid);
	}
}

export class InvalidMasterKeyError extends Error {
	override name = "InvalidMasterKeyError";
}

export interface KeyListOrigin {
	/** "lines": one key per line (a key file); "comma": comma-separated (an environment variable). */
	format: "lines" | "comma";
	/** The file path or variable name, used in error messages. */
	source: string;
}

/**
 * Decodes a list of base64 master keys. Blank entries and entries starting with `#` are skipped.
 * Errors name the entry by position and never print what it contains.
 */
export function parseMasterKeyList(text: string, origin: KeyListOrigin): Uint8Array[] {
	const parts = origin.format === "lines" ? text.split(/\r?\n/) : text.split(",");
	const keys: Uint8Array[] = [];
	const seen = new Map<string, number>();
	for (const [index, raw] of parts.entries()) {
		const entry = raw.trim();
		if (entry === "" || entry.startsWith("#")) continue;
		const position = keys.length + 1;
		const where =
			origin.format === "lines"
				? `key ${position} (line ${index + 1}) of ${origin.source}`
				: `key ${position} of ${origin.source}`;
		const bytes = decodeBase64(entry);
		if (!bytes) throw new InvalidMasterKeyError(`${where} is not valid base64`);
		if (bytes.length !== MASTER_KEY_BYTES) {
			throw new InvalidMasterKeyError(
				`${where} decodes to ${bytes.length} bytes; a master key is ${MASTER_KEY_BYTES} random bytes in base64 (44 characters)`,
			);
		}
		// The same key twice is a copy-paste slip that would make "current" ambiguous to a reader.
		const earlier = seen.get(entry);
		if (earlier !== undefined) {
			throw new InvalidMasterKeyError(`${where} repeats key ${earlier}`);
		}
		seen.set(entry, position);
		keys.push(bytes);
	}
	if (keys.length === 0) {
		const expected =
			origin.format === "lines" ? "one base64 key per line" : "comma-separated base64 keys";
		throw new InvalidMasterKeyError(`no master key in ${origin.source} (expected ${expected})`);
	}
	return keys;
}

export async function parseMasterKeyring(
	text: string,
	origin: KeyListOrigin,
): Promise<MasterKeyring> {
	return MasterKeyring.fromKeys(parseMasterKeyList(text, origin));
}

export function generateMasterKey(): Uint8Array {
	return crypto.getRandomValues(new Uint8Array(MASTER_KEY_BYTES));
}

/** The text form of a key, as written in a key file or an environment variable. */
export function encodeMasterKey(key: Uint8Array): string {
	return encodeBase64(key);
}

export async function masterKeyId(key: Uint8Array): Promise<string> {
	const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", copy(key)));
	let hex = "";
	for (const b of digest.subarray(0, 8)) hex += b.toString(16).padStart(2, "0");
	return hex;
}

/** A copy backed by a plain ArrayBuffer, which is what WebCrypto's typings accept. */
function copy(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
	return new Uint8Array(bytes);
}
