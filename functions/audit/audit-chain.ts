import { eq, sql } from "drizzle-orm";
import type { RegionDb } from "../../db/client";
import { auditEvents, auditHeads } from "../../db/schema/region/audit-events";
import { type Clock, newId } from "../runtime";

/** prevHash of the first event of every chain. */
export const GENESIS_HASH = "0".repeat(64);

/** Platform events go to this chain in each region; a tenant's events go to the chain named by its id. */
export const PLATFORM_CHAIN = "platform";

export interface AuditEventInput {
	/** The tenant id, or PLATFORM_CHAIN. */
	chain: string;
	/** Who did it: an API token id, "scheduler", "node:<id>", ... */
	actor: string;
	/** What happened, e.g. "certificate.renewed". */
	action: string;
	/** What it happened to, e.g. a certificate id or a hostname. */
	subject: string;
	/** JSON-safe details; never secrets. */
	data: Record<string, unknown>;
}

/** The fields an event's hash covers: everything but the hash itself. */
export interface HashedAuditEvent extends AuditEventInput {
	seq: number;
	id: string;
	at: Date;
	prevHash: string;
}

export interface AuditEvent extends HashedAuditEvent {
	hash: string;
}

/**
 * Anything that can read and write the region's tables: the region database or, as intended,
 * the transaction that makes the change being audited.
 */
export type AuditWriter = Pick<RegionDb, "select" | "insert">;

export class AuditChainError extends Error {
	override name = "AuditChainError";
}

/**
 * Appends an event to its chain inside the caller's transaction, so the change and its audit
 * event commit together or not at all. Two concurrent appends cannot fork a chain: the second
 * to insert the same (chain, seq) fails on the primary key and its transaction rolls back.
 */
export async function appendAuditEvent(
	tx: AuditWriter,
	input: AuditEventInput,
	deps: { clock: Clock; id?: string },
): Promise<AuditEvent> {
	const [head] = await tx
		.select({ seq: auditHeads.seq, hash: auditHeads.hash })
		.from(auditHeads)
		.where(eq(auditHeads.chain, input.chain));
	if (!head) {
		// Without a head, seq 1 would collide with what is there; say why instead of a constraint error.
		const [existing] = await tx
			.select({ seq: auditEvents.seq })
			.from(auditEvents)
			.where(eq(auditEvents.chain, input.chain))
			.limit(1);
		if (existing) {
			throw new AuditChainError(
				`audit chain ${input.chain} has events but no head: run \`castellan audit verify\``,
			);
		}
	}

	const event: HashedAuditEvent = {
		...input,
		// Hash what will be read back: JSON drops undefined, turns Dates into strings, -0 into 0.
		data: JSON.parse(JSON.stringify(input.data)) as Record<string, unknown>,
		seq: head ? head.seq + 1 : 1,
		id: deps.id ?? newId("evt"),
		at: new Date(deps.clock.now().getTime()),
		prevHash: head?.hash ?? GENESIS_HASH,
	};
	const hash = await auditEventHash(event);
	await tx.insert(auditEvents).values({ ...event, hash });
	await tx
		.insert(auditHeads)
		.values({ chain: event.chain, seq: event.seq, hash })
		.onConflictDoUpdate({
			target: auditHeads.chain,
			set: { seq: sql`excluded.seq`, hash: sql`excluded.hash` },
		});
	return { ...event, hash };
}

/** SHA-256 (hex) of the event's canonical JSON. */
export async function auditEventHash(event: HashedAuditEvent): Promise<string> {
	const bytes = new TextEncoder().encode(canonicalAuditJson(event));
	const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
	let hex = "";
	for (const b of digest) hex += b.toString(16).padStart(2, "0");
	return hex;
}

/**
 * The bytes an event's hash covers: JSON with object keys sorted at every depth and `at` as
 * epoch milliseconds, so the same event always serializes the same way, in any runtime.
 */
export function canonicalAuditJson(event: HashedAuditEvent): string {
	return canonicalJson({
		chain: event.chain,
		seq: event.seq,
		id: event.id,
		at: event.at.getTime(),
		actor: event.actor,
		action: event.action,
		subject: event.subject,
		data: event.data,
		prevHash: event.prevHash,
	});
}

/** JSON with sorted keys. Written out by hand so a "__proto__" key is data, not a prototype. */
export function canonicalJson(value: unknown): string {
	if (value === null || typeof value !== "object") {
		const text = JSON.stringify(value);
		if (text === undefined) throw new TypeError(`cannot serialize a ${typeof value} as JSON`);
		return text;
	}
	if (Array.isArray(value)) {
		return `[${value.map((v) => (v === undefined ? "null" : canonicalJson(v))).join(",")}]`;
	}
	const record = value as Record<string, unknown>;
	const fields: string[] = [];
	for (const key of Object.keys(record).sort()) {
		if (record[key] === undefined) continue;
		fields.push(`${JSON.stringify(key)}:${canonicalJson(record[key])}`);
	}
	return `{${fields.join(",")}}`;
}
