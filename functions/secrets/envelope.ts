import { decodeBase64Url, encodeBase64Url } from "./base64";
import type { MasterKeyring } from "./keyring";
import type { SecretBinding, SecretBox } from "./secret-box";

/*
 * Ciphertext format, version cs1: four fields separated by dots, all URL- and SQL-safe.
 *
 *   cs1.<kid>.<wrapped data key>.<sealed data>
 *
 *   kid               16 lowercase hex chars: the master key that wraps the data key
 *   wrapped data key  base64url(iv[12] || AES-256-GCM(master key, data key[32]) || tag[16])
 *   sealed data       base64url(iv[12] || AES-256-GCM(data key, plaintext) || tag[16])
 *
 * The data key is fresh and random for every seal. Both layers authenticate the same
 * associated data, the UTF-8 JSON array ["cs1", kid, scope, purpose, ref], so a ciphertext
 * moved to another tenant, purpose or row, or relabelled with another kid, does not open.
 */
const VERSION = "cs1";
const KID = /^[0-9a-f]{16}$/;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const DATA_KEY_BYTES = 32;
const WRAPPED_KEY_BYTES = IV_BYTES + DATA_KEY_BYTES + TAG_BYTES;

export class MalformedCiphertextError extends Error {
	override name = "MalformedCiphertextError";

	constructor(reason: string, binding?: SecretBinding) {
		super(
			binding
				? `cannot decrypt ${describe(binding)}: the ciphertext is malformed (${reason})`
				: `malformed ciphertext: ${reason}`,
		);
	}
}

export class UnknownMasterKeyError extends Error {
	override name = "UnknownMasterKeyError";

	constructor(
		readonly kid: string,
		readonly knownKids: readonly string[],
		binding?: SecretBinding,
	) {
		super(
			`${binding ? `cannot decrypt ${describe(binding)}: ` : ""}this secret was sealed with master key ${kid}, which is not in the configured keyring (keys: ${knownKids.join(", ")}): wrong master key?`,
		);
	}
}

export class SecretDecryptError extends Error {
	override name = "SecretDecryptError";

	constructor(readonly binding: SecretBinding) {
		super(
			`cannot decrypt ${describe(binding)}: the ciphertext does not belong here or was altered`,
		);
	}
}

/** Envelope encryption with the keyring's current key; any key of the keyring opens. */
export function createSecretBox(keyring: MasterKeyring): SecretBox {
	const open = async (ciphertext: string, binding: SecretBinding): Promise<Uint8Array> => {
		checkBinding(binding);
		const parsed = parseCiphertext(ciphertext, binding);
		const master = keyring.find(parsed.kid);
		if (!master) throw new UnknownMasterKeyError(parsed.kid, keyring.kids, binding);
		const aad = associatedData(parsed.kid, binding);
		const dataKeyBytes = await decrypt(master.key, parsed.wrappedKey, aad, binding);
		const dataKey = await importDataKey(dataKeyBytes);
		dataKeyBytes.fill(0);
		return decrypt(dataKey, parsed.sealed, aad, binding);
	};

	return {
		async seal(plaintext, binding) {
			checkBinding(binding);
			const master = keyring.current;
			const aad = associatedData(master.kid, binding);
			const dataKeyBytes = crypto.getRandomValues(new Uint8Array(DATA_KEY_BYTES));
			const dataKey = await importDataKey(dataKeyBytes);
			const wrappedKey = await encrypt(master.key, dataKeyBytes, aad);
			dataKeyBytes.fill(0);
			const bytes = typeof plaintext === "string" ? new TextEncoder().encode(plaintext) : plaintext;
			const sealed = await encrypt(dataKey, bytes, aad);
			return [VERSION, master.kid, encodeBase64Url(wrappedKey), encodeBase64Url(sealed)].join(".");
		},
		open,
		async openText(ciphertext, binding) {
			const bytes = await open(ciphertext, binding);
			try {
				return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
			} catch {
				throw new MalformedCiphertextError("the plaintext is not UTF-8 text", binding);
			}
		},
	};
}

/** The master key id a ciphertext names, read without decrypting (used to skip current ones). */
export function ciphertextKeyId(ciphertext: string): string {
	return parseCiphertext(ciphertext).kid;
}

/** The text every ciphertext sealed with this master key starts with. */
export function ciphertextPrefix(kid: string): string {
	return `${VERSION}.${kid}.`;
}

interface ParsedCiphertext {
	kid: string;
	wrappedKey: Uint8Array<ArrayBuffer>;
	sealed: Uint8Array<ArrayBuffer>;
}

// Reasons never quote the input: a plaintext stored by mistake in a ciphertext column stays unprinted.
function parseCiphertext(ciphertext: string, binding?: SecretBinding): ParsedCiphertext {
	const fields = ciphertext.split(".");
	if (fields.length !== 4 || fields[0] !== VERSION) {
		throw new MalformedCiphertextError(
			`not a ${VERSION} ciphertext (expected ${VERSION}.<kid>.<key>.<data>)`,
			binding,
		);
	}
	const [, kid, wrappedText, sealedText] = fields as [string, string, string, string];
	if (!KID.test(kid)) throw new MalformedCiphertextError("bad key id field", binding);
	const wrappedKey = decodeBase64Url(wrappedText);
	if (!wrappedKey || wrappedKey.length !== WRAPPED_KEY_BYTES) {
		throw new MalformedCiphertextError("bad wrapped key field", binding);
	}
	const sealed = decodeBase64Url(sealedText);
	if (!sealed || sealed.length < IV_BYTES + TAG_BYTES) {
		throw new MalformedCiphertextError("bad data field", binding);
	}
	return { kid, wrappedKey: new Uint8Array(wrappedKey), sealed: new Uint8Array(sealed) };
}

function checkBinding(binding: SecretBinding): void {
	for (const field of ["scope", "purpose", "ref"] as const) {
		if (typeof binding[field] !== "string" || binding[field] === "") {
			throw new TypeError(`secret binding: ${field} must be a non-empty string`);
		}
	}
}

function associatedData(kid: string, binding: SecretBinding): Uint8Array<ArrayBuffer> {
	// A JSON array, not a joined string, so no choice of scope/ref can collide with another.
	return new TextEncoder().encode(
		JSON.stringify([VERSION, kid, binding.scope, binding.purpose, binding.ref]),
	);
}

function importDataKey(bytes: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
	return crypto.subtle.importKey("raw", bytes, "AES-GCM", false, ["encrypt", "decrypt"]);
}

/** iv || ciphertext || tag */
async function encrypt(
	key: CryptoKey,
	plaintext: Uint8Array,
	additionalData: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array<ArrayBuffer>> {
	const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
	const body = await crypto.subtle.encrypt(
		{ name: "AES-GCM", iv, additionalData },
		key,
		new Uint8Array(plaintext),
	);
	const out = new Uint8Array(IV_BYTES + body.byteLength);
	out.set(iv);
	out.set(new Uint8Array(body), IV_BYTES);
	return out;
}

async function decrypt(
	key: CryptoKey,
	ivAndBody: Uint8Array<ArrayBuffer>,
	additionalData: Uint8Array<ArrayBuffer>,
	binding: SecretBinding,
): Promise<Uint8Array<ArrayBuffer>> {
	try {
		const plaintext = await crypto.subtle.decrypt(
			{ name: "AES-GCM", iv: ivAndBody.subarray(0, IV_BYTES), additionalData },
			key,
			ivAndBody.subarray(IV_BYTES),
		);
		return new Uint8Array(plaintext);
	} catch {
		throw new SecretDecryptError(binding);
	}
}

function describe(binding: SecretBinding): string {
	return `${binding.purpose} for ${binding.scope}/${binding.ref}`;
}
