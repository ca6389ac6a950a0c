/**
 * `castellan-signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`. Several
 * v1 values may be sent (the sender signing with old and new secret during rotation); one
 * match against any accepted secret is enough.
 */
export const SIGNATURE_HEADER = "castellan-signature";

export type SignatureFailure = "missing" | "malformed" | "stale" | "mismatch";

export interface SignatureSecret<Owner> {
	owner: Owner;
	secret: string;
}

export type SignatureCheck<Owner> =
	| { ok: true; owner: Owner }
	| { ok: false; reason: SignatureFailure };

export async function signPayload(
	secret: string,
	body: string,
	unixSeconds: number,
): Promise<string> {
	return `t=${unixSeconds},v1=${await hmacHex(secret, `${unixSeconds}.${body}`)}`;
}

export async function verifySignature<Owner>(input: {
	header: string | undefined | null;
	body: string;
	secrets: ReadonlyArray<SignatureSecret<Owner>>;
	now: Date;
	toleranceSeconds: number;
}): Promise<SignatureCheck<Owner>> {
	if (!input.header) return { ok: false, reason: "missing" };
	const parsed = parseHeader(input.header);
	if (!parsed) return { ok: false, reason: "malformed" };
	if (Math.abs(input.now.getTime() / 1000 - parsed.t) > input.toleranceSeconds) {
		return { ok: false, reason: "stale" };
	}
	for (const candidate of input.secrets) {
		const expected = await hmacHex(candidate.secret, `${parsed.t}.${input.body}`);
		if (parsed.v1.some((given) => constantTimeEqual(given, expected)))
			return { ok: true, owner: candidate.owner };
	}
	return { ok: false, reason: "mismatch" };
}

function parseHeader(header: string): { t: number; v1: string[] } | undefined {
	let t: number | undefined;
	const v1: string[] = [];
	for (const part of header.split(",")) {
		const [key, value, ...rest] = part.trim().split("=");
		if (rest.length > 0 || !key || value === undefined) return undefined;
		if (key === "t") {
			if (!/^\d{1,12}$/.test(value) || t !== undefined) return undefined;
			t = Number(value);
		} else if (key === "v1") {
			if (!/^[0-9a-f]{64}$/.test(value)) return undefined;
			v1.push(value);
		}
	}
	return t !== undefined && v1.length > 0 ? { t, v1 } : undefined;
}

async function hmacHex(secret: string, message: string): Promise<string> {
	const key = await crypto.subtle.importKey(
		"raw",
		new TextEncoder().encode(secret),
		{ name: "HMAC", hash: "SHA-256" },
		false,
		["sign"],
	);
	const mac = new Uint8Array(
		await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(message)),
	);
	return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
}

function constantTimeEqual(a: string, b: string): boolean {
	if (a.length !== b.length) return false;
	let diff = 0;
	for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
	return diff === 0;
}
