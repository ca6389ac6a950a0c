import { and, eq, isNull } from "drizzle-orm";
import { z } from "zod";
import { apiTokens } from "../../db/schema/catalog";
import type { ControlStore } from "../../db/store";
import { AppError } from "../errors";
import { zodViolations } from "../policy/violations";
import type { Clock } from "../runtime";

export const SCOPES = ["admin", "tenants:write", "read"] as const;
export type Scope = (typeof SCOPES)[number];

/** What each scope also grants: admin is everything; writing tenants includes reading them. */
const IMPLIES: Record<Scope, readonly Scope[]> = {
	admin: SCOPES,
	"tenants:write": ["tenants:write", "read"],
	read: ["read"],
};

export function grants(granted: readonly string[], required: Scope): boolean {
	return granted.some((s) => (IMPLIES[s as Scope] ?? []).includes(required));
}

const createTokenInput = z.strictObject({
	name: z.string().min(1).max(100).default("unnamed"),
	scopes: z.array(z.enum(SCOPES)).min(1, "give at least one scope"),
});

const TOKEN_PATTERN = /^cst_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

/**
 * Creates an API token. The secret is returned once and only its SHA-256 is stored; a token
 * carries its id so lookups never compare secrets in a loop.
 */
export async function createApiToken(
	store: ControlStore,
	clock: Clock,
	input: unknown,
): Promise<{ id: string; token: string; scopes: Scope[] }> {
	const parsed = createTokenInput.safeParse(input);
	if (!parsed.success) throw AppError.validation(zodViolations(parsed.error));
	const id = hex(crypto.getRandomValues(new Uint8Array(8)));
	const secret = base64url(crypto.getRandomValues(new Uint8Array(32)));
	await store.catalog.insert(apiTokens).values({
		id,
		name: parsed.data.name,
		secretHash: await sha256Hex(secret),
		scopes: parsed.data.scopes,
		createdAt: clock.now(),
	});
	return { id, token: `cst_${id}_${secret}`, scopes: parsed.data.scopes };
}

/** The token's id and scopes when it is well-formed, known, not revoked and its secret matches. */
export async function verifyApiToken(
	store: ControlStore,
	token: string,
): Promise<{ id: string; scopes: string[] } | undefined> {
	const match = TOKEN_PATTERN.exec(token);
	if (!match) return undefined;
	const [, id, secret] = match as unknown as [string, string, string];
	const [row] = await store.catalog
		.select()
		.from(apiTokens)
		.where(and(eq(apiTokens.id, id), isNull(apiTokens.revokedAt)))
		.limit(1);
	if (!row) return undefined;
	const presented = await sha256Hex(secret);
	return timingSafeEqual(presented, row.secretHash)
		? { id: row.id, scopes: row.scopes }
		: undefined;
}

async function sha256Hex(text: string): Promise<string> {
	return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))));
}

function timingSafeEqual(a: string, b: string): boolean {
	if (a.length !== b.length) return false;
	let diff = 0;
	for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
	return diff === 0;
}

function hex(bytes: Uint8Array): string {
	return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function base64url(bytes: Uint8Array): string {
	return btoa(String.fromCharCode(...bytes))
		.replaceAll("+", "-")
		.replaceAll("/", "_")
		.replace(/=+$/, "");
}
