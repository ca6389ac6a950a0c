import type { Client, InArgs, InValue } from "@libsql/client/web";
import type { RegionDb } from "../../db/client";
import { auditEventHash, GENESIS_HASH, type HashedAuditEvent } from "./audit-chain";

export type AuditProblemKind =
	/** The content no longer matches the hash. */
	| "edited"
	/** The content matches the hash only under another seq: the event was renumbered. */
	| "moved"
	/** One or more seqs are absent before this point, or after the last event (truncated). */
	| "missing"
	/** A seq below 1 or out of order. */
	| "out-of-sequence"
	/** prev_hash is not the hash of the event before it. */
	| "broken-link"
	/** An event the head does not account for, or a head that does not match the last event. */
	| "head-mismatch";

export interface AuditProblem {
	chain: string;
	seq: number;
	/** The event's id, when there is an event at that seq. */
	id?: string;
	kind: AuditProblemKind;
	/** One line for a human, naming the chain, the event and what is wrong with it. */
	problem: string;
}

export type AuditVerification =
	| { ok: true; chains: number; events: number }
	| {
			ok: false;
			chains: number;
			events: number;
			/** Ordered by chain, then seq. */
			problems: AuditProblem[];
			/** The lowest-seq problem of the first broken chain. */
			firstBad: AuditProblem;
	  };

/** One line for `castellan audit verify`. */
export function formatAuditVerification(result: AuditVerification): string {
	if (result.ok) return `audit chains intact: ${result.chains} chains, ${result.events} events`;
	const more = result.problems.length - 1;
	return `${result.firstBad.problem}${more > 0 ? ` (and ${more} more problem${more > 1 ? "s" : ""})` : ""}`;
}

interface StoredEvent {
	chain: unknown;
	seq: number;
	id: string;
	at: unknown;
	actor: unknown;
	action: unknown;
	subject: unknown;
	data: unknown;
	prevHash: string;
	hash: string;
}

const PAGE = 1000;
/** How far from its place a renumbered event is looked for, and how many such searches a run makes. */
const MOVE_WINDOW = 64;
const MOVE_SEARCHES = 50;

/**
 * Recomputes every event's hash and walks each chain from genesis to its head, in one read
 * transaction: a snapshot, so events appended meanwhile are not mistaken for forgeries, and
 * writers are not blocked. Raw rows, not drizzle's mapped ones, so a tampered value (bad JSON,
 * a string time) is reported rather than thrown. Detects edits, deletions, insertions,
 * reordering and a truncated tail; it cannot detect a chain rewritten from the tampered event
 * onwards, head included: keep a copy of the heads elsewhere for that.
 */
export async function verifyAuditChains(
	db: RegionDb,
	opts: { chain?: string } = {},
): Promise<AuditVerification> {
	const tx = await clientOf(db).transaction("read");
	try {
		const query = async <T>(sql: string, args: InArgs): Promise<T[]> =>
			(await tx.execute({ sql, args })).rows as unknown as T[];
		const chains =
			opts.chain !== undefined
				? [opts.chain]
				: (
						await query<{ chain: string }>(
							"select chain from audit_events union select chain from audit_heads order by chain",
							[],
						)
					).map((r) => r.chain);
		const state = { events: 0, moveSearches: MOVE_SEARCHES };
		const problems: AuditProblem[] = [];
		let chainCount = 0;
		for (const chain of chains) {
			const found = await verifyChain(query, chain, state);
			if (found.seen) chainCount++;
			problems.push(...found.problems.sort((a, b) => a.seq - b.seq));
		}
		const firstBad = problems[0];
		return firstBad
			? { ok: false, chains: chainCount, events: state.events, problems, firstBad }
			: { ok: true, chains: chainCount, events: state.events };
	} finally {
		tx.close();
	}
}

/** drizzle keeps the libSQL client it was built on; a snapshot read needs the client itself. */
function clientOf(db: RegionDb): Client {
	const client = (db as RegionDb & { $client?: Client }).$client;
	if (!client) throw new TypeError("verifyAuditChains needs a region database made by regionDb()");
	return client;
}

type Query = <T>(sql: string, args: InArgs) => Promise<T[]>;

async function verifyChain(
	query: Query,
	chain: string,
	state: { events: number; moveSearches: number },
): Promise<{ seen: boolean; problems: AuditProblem[] }> {
	const problems: AuditProblem[] = [];
	const report = (seq: number, kind: AuditProblemKind, what: string, id?: string) =>
		problems.push({
			chain,
			seq,
			...(id !== undefined && { id }),
			kind,
			problem: `chain ${chain}: ${what}`,
		});
	const name = (e: StoredEvent) => `event ${e.seq} (${e.id})`;

	const [head] = await query<{ seq: number; hash: string }>(
		"select seq, hash from audit_heads where chain = ?",
		[chain],
	);
	let previous: StoredEvent | undefined;
	let previousMoved = false;
	let pastHeadReported = false;
	let after: InValue | undefined;
	for (;;) {
		const page = await query<StoredEvent>(
			`select chain, seq, id, at, actor, action, subject, data, prev_hash as prevHash, hash
			from audit_events where chain = ? ${after === undefined ? "" : "and seq > ?"}
			order by seq limit ${PAGE}`,
			after === undefined ? [chain] : [chain, after],
		);
		for (const event of page) {
			state.events++;
			const expectedSeq = previous ? previous.seq + 1 : 1;
			let gap = false;
			if (event.seq !== expectedSeq) {
				gap = true;
				if (Number.isInteger(event.seq) && event.seq > expectedSeq) {
					const absent =
						event.seq - expectedSeq === 1
							? `event ${expectedSeq} is missing`
							: `events ${expectedSeq} to ${event.seq - 1} are missing`;
					const follows = previous ? `event ${previous.seq}` : "the start of the chain";
					report(expectedSeq, "missing", `${absent} (deleted?): ${name(event)} follows ${follows}`);
				} else {
					report(
						event.seq,
						"out-of-sequence",
						`${name(event)} is out of sequence (expected ${expectedSeq})`,
						event.id,
					);
				}
			}

			const content = await checkContent(event, state);
			if (content.kind === "edited") {
				report(event.seq, "edited", `${name(event)} was edited: ${content.why}`, event.id);
			} else if (content.kind === "moved") {
				report(
					event.seq,
					"moved",
					`${name(event)} was moved: it was written as event ${content.writtenAs}`,
					event.id,
				);
			}

			// A gap or a renumbered neighbour already explains a broken link; do not report it twice.
			const expectedPrev = previous ? previous.hash : GENESIS_HASH;
			if (event.prevHash !== expectedPrev && !gap && !previousMoved && content.kind !== "moved") {
				report(
					event.seq,
					"broken-link",
					previous
						? `${name(event)} does not follow event ${previous.seq}: its prev_hash is not that event's hash (event ${previous.seq} replaced, or an event inserted or reordered)`
						: `${name(event)} does not start the chain: its prev_hash is not the genesis hash`,
					event.id,
				);
			}

			if (head && event.seq > head.seq && !pastHeadReported) {
				pastHeadReported = true;
				report(
					event.seq,
					"head-mismatch",
					`${name(event)} is past the head (event ${head.seq}): written without updating the head`,
					event.id,
				);
			}
			previous = event;
			previousMoved = content.kind === "moved";
			after = event.seq;
		}
		if (page.length < PAGE) break;
	}

	if (!previous && !head) return { seen: false, problems };
	if (!head && previous) {
		report(
			previous.seq,
			"head-mismatch",
			`has no head (last event ${previous.seq}): the head row was deleted`,
			previous.id,
		);
	} else if (head && !previous) {
		report(
			1,
			"missing",
			`events 1 to ${head.seq} are missing: the head records event ${head.seq} but the chain is empty`,
		);
	} else if (head && previous) {
		if (head.seq > previous.seq) {
			const absent =
				head.seq - previous.seq === 1
					? `event ${head.seq} is missing`
					: `events ${previous.seq + 1} to ${head.seq} are missing`;
			report(
				previous.seq + 1,
				"missing",
				`${absent} (truncated): the head records event ${head.seq} but the chain ends at ${name(previous)}`,
			);
		} else if (head.seq === previous.seq && head.hash !== previous.hash) {
			report(
				previous.seq,
				"head-mismatch",
				`the head does not match ${name(previous)}: the event was replaced, or the head edited`,
				previous.id,
			);
		}
	}
	return { seen: true, problems };
}

type ContentCheck =
	| { kind: "intact" }
	| { kind: "edited"; why: string }
	| { kind: "moved"; writtenAs: number };

async function checkContent(
	event: StoredEvent,
	state: { moveSearches: number },
): Promise<ContentCheck> {
	if (typeof event.at !== "number" || !Number.isSafeInteger(event.at)) {
		return { kind: "edited", why: "its time is not a millisecond timestamp" };
	}
	let data: unknown;
	try {
		data = typeof event.data === "string" ? JSON.parse(event.data) : event.data;
	} catch {
		return { kind: "edited", why: "its data is not valid JSON" };
	}
	// Values are hashed as stored: a column whose type was changed (5 for "5") does not match.
	const fields = {
		...event,
		at: new Date(event.at),
		data,
	} as unknown as HashedAuditEvent;
	if ((await auditEventHash(fields)) === event.hash) return { kind: "intact" };
	if (state.moveSearches > 0 && Number.isInteger(event.seq)) {
		state.moveSearches--;
		for (let d = 1; d <= MOVE_WINDOW; d++) {
			for (const seq of [event.seq - d, event.seq + d]) {
				if (seq >= 1 && (await auditEventHash({ ...fields, seq })) === event.hash) {
					return { kind: "moved", writtenAs: seq };
				}
			}
		}
	}
	return { kind: "edited", why: "its hash does not match its content" };
}
