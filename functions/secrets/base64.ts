/**
 * Strict base64 and base64url codecs on top of atob/btoa, which every runtime has.
 * Decoding accepts only the canonical encoding: a string that decodes and re-encodes to
 * something else (stray padding bits, whitespace) is refused, so no two strings carry the
 * same bytes and changing any character of a ciphertext is noticed.
 */

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

export function encodeBase64(bytes: Uint8Array): string {
	let binary = "";
	for (const b of bytes) binary += String.fromCharCode(b);
	return btoa(binary);
}

export function encodeBase64Url(bytes: Uint8Array): string {
	return encodeBase64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Standard base64 with padding; undefined when the text is not its canonical encoding. */
export function decodeBase64(text: string): Uint8Array | undefined {
	if (!BASE64.test(text) || text.length % 4 !== 0) return undefined;
	const bytes = fromBinary(text);
	return bytes && encodeBase64(bytes) === text ? bytes : undefined;
}

/** Unpadded base64url; undefined when the text is not its canonical encoding. */
export function decodeBase64Url(text: string): Uint8Array | undefined {
	if (!BASE64URL.test(text) || text.length % 4 === 1) return undefined;
	const padded = text
		.replace(/-/g, "+")
		.replace(/_/g, "/")
		.padEnd(Math.ceil(text.length / 4) * 4, "=");
	const bytes = fromBinary(padded);
	return bytes && encodeBase64Url(bytes) === text ? bytes : undefined;
}

function fromBinary(padded: string): Uint8Array | undefined {
	let binary: string;
	try {
		binary = atob(padded);
	} catch {
		return undefined;
	}
	const bytes = new Uint8Array(binary.length);
	for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
	return bytes;
}
