import { createHash } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { RegionDb } from "../../db/client";
import { auditEvents, auditHeads } from "../../db/schema/region/audit-events";
import {
	AuditChainError,
	type AuditEventInput,
	appendAuditEvent,
	auditEventHash,
	canonicalJson,
	GENESIS_HASH,
	PLATFORM_CHAIN,
} from "../../functions/audit/audit-chain";
import {
	type AuditVerification,
	formatAuditVerification,
	verifyAuditChains,
} from "../../functions/audit/verify-audit";
import type { Clock } from "../../functions/runtime";
import { createTempStore, type TempStore } from "../helpers/temp-store";

const START = Date.parse("2026-03-01T12:00:00Z");

/** A clock that moves one second per reading. */
function steppingClock(): Clock {
	let t = START;
	return {
		now: () => {
			t += 1000;
			return new Date(t);
		},
	};
}

function event(chain: string, i: number): AuditEventInput {
	return {
		chain,
		actor: "tok_admin",
		action: "route.updated",
		subject: `app${i}.example.net`,
		data: { step: i, target: { region: "eu-central", weight: 1 } },
	};
}

/** Appends events 1..count with ids `<chain>-<seq>`, in one transaction. */
async function appendMany(db: RegionDb, chain: string, count: number, clock = steppingClock()) {
	await db.transaction(async (tx) => {
		for (let i = 1; i <= count; i++) {
			await appendAuditEvent(tx, event(chain, i), { clock, id: `${chain}-${i}` });
		}
	});
}

function problems(result: AuditVerification) {
	if (result.ok) throw new Error(`expected problems, got ${formatAuditVerification(result)}`);
	return result.problems;
}

describe("audit chain", () => {
	let temp: TempStore;
	let db: RegionDb;
	beforeEach(async () => {
		temp = await createTempStore();
		db = temp.store.region("eu-central").db;
	});
	afterEach(() => temp.close());

	it("links events from genesis and keeps the head on the last one", async () => {
		await appendMany(db, "ten_a", 3);
		const rows = await db.select().from(auditEvents).orderBy(auditEvents.seq);
		expect(rows.map((r) => r.seq)).toEqual([1, 2, 3]);
		expect(rows[0]!.prevHash).toBe(GENESIS_HASH);
		expect(rows[1]!.prevHash).toBe(rows[0]!.hash);
		expect(rows[2]!.prevHash).toBe(rows[1]!.hash);
		expect(rows[0]!.at.getTime()).toBe(START + 1000);
		expect(await db.select().from(auditHeads)).toEqual([
			{ chain: "ten_a", seq: 3, hash: rows[2]!.hash },
		]);
	});

	it("hashes a documented canonical form: sorted keys at every depth, time in ms", async () => {
		const clock = { now: () => new Date(START) };
		const appended = await appendAuditEvent(
			db,
			{
				chain: "ten_a",
				actor: "tok_1",
				action: "cert.issued",
				subject: "crt_1",
				data: { z: 1, a: { y: [2, { d: 1, c: null }], x: "é" } },
			},
			{ clock, id: "evt_1" },
		);
		const expected =
			`{"action":"cert.issued","actor":"tok_1","at":${START},"chain":"ten_a",` +
			`"data":{"a":{"x":"é","y":[2,{"c":null,"d":1}]},"z":1},"id":"evt_1",` +
			`"prevHash":"${GENESIS_HASH}","seq":1,"subject":"crt_1"}`;
		expect(appended.hash).toBe(createHash("sha256").update(expected, "utf8").digest("hex"));
		expect(canonicalJson({ b: 1, a: { d: [1], c: 2 } })).toBe('{"a":{"c":2,"d":[1]},"b":1}');
		// "__proto__" is an ordinary key here, not a way to change what gets hashed.
		expect(canonicalJson(JSON.parse('{"__proto__":{"x":1}}'))).toBe('{"__proto__":{"x":1}}');
	});

	it("hashes what it stores, so data that JSON changes still verifies", async () => {
		await appendAuditEvent(
			db,
			{
				chain: "ten_a",
				actor: "a",
				action: "b",
				subject: "c",
				data: { when: new Date(START), dropped: undefined, zero: -0, list: [undefined, 1] },
			},
			{ clock: steppingClock() },
		);
		const [row] = await db.select().from(auditEvents);
		expect(row!.data).toEqual({ when: new Date(START).toISOString(), zero: 0, list: [null, 1] });
		expect(await verifyAuditChains(db)).toEqual({ ok: true, chains: 1, events: 1 });
	});

	it("commits or rolls back with the caller's transaction", async () => {
		await appendMany(db, "ten_a", 2);
		await expect(
			db.transaction(async (tx) => {
				await appendAuditEvent(tx, event("ten_a", 3), { clock: steppingClock() });
				throw new Error("the audited change failed");
			}),
		).rejects.toThrow("the audited change failed");
		expect(await db.select({ seq: auditEvents.seq }).from(auditEvents)).toHaveLength(2);
		expect((await db.select().from(auditHeads))[0]!.seq).toBe(2);
		await appendMany(db, "ten_b", 1);
		expect(await verifyAuditChains(db)).toEqual({ ok: true, chains: 2, events: 3 });
	});

	it("refuses to append to a chain whose head was deleted", async () => {
		await appendMany(db, "ten_a", 2);
		await db.run(sql`delete from audit_heads where chain = 'ten_a'`);
		await expect(
			appendAuditEvent(db, event("ten_a", 3), { clock: steppingClock() }),
		).rejects.toThrow(AuditChainError);
	});
});

describe("verifyAuditChains", () => {
	let temp: TempStore;
	let db: RegionDb;
	beforeEach(async () => {
		temp = await createTempStore();
		db = temp.store.region("eu-central").db;
		await appendMany(db, "ten_x", 5);
		await appendMany(db, PLATFORM_CHAIN, 3);
	});
	afterEach(() => temp.close());

	it("passes intact chains", async () => {
		const result = await verifyAuditChains(db);
		expect(result).toEqual({ ok: true, chains: 2, events: 8 });
		expect(formatAuditVerification(result)).toBe("audit chains intact: 2 chains, 8 events");
		expect(await verifyAuditChains(db, { chain: "ten_x" })).toEqual({
			ok: true,
			chains: 1,
			events: 5,
		});
		expect(await verifyAuditChains(temp.store.region("us-east").db)).toEqual({
			ok: true,
			chains: 0,
			events: 0,
		});
	});

	it("names an edited event", async () => {
		await db.run(
			sql`update audit_events set data = '{"step":99}' where chain = 'ten_x' and seq = 3`,
		);
		const result = await verifyAuditChains(db);
		expect(problems(result)).toEqual([
			{
				chain: "ten_x",
				seq: 3,
				id: "ten_x-3",
				kind: "edited",
				problem: "chain ten_x: event 3 (ten_x-3) was edited: its hash does not match its content",
			},
		]);
		expect(formatAuditVerification(result)).toBe(
			"chain ten_x: event 3 (ten_x-3) was edited: its hash does not match its content",
		);
	});

	it("names edits to every column the hash covers, and survives unreadable values", async () => {
		const edits = [
			sql`update audit_events set actor = 'tok_intruder' where chain = 'ten_x' and seq = 1`,
			sql`update audit_events set action = 'nothing' where chain = 'ten_x' and seq = 2`,
			sql`update audit_events set subject = 'other' where chain = 'ten_x' and seq = 3`,
			sql`update audit_events set at = at + 1 where chain = 'ten_x' and seq = 4`,
			sql`update audit_events set data = '{not json' where chain = 'ten_x' and seq = 5`,
			sql`update audit_events set at = 'yesterday' where chain = 'platform' and seq = 1`,
			sql`update audit_events set id = 'evt_forged' where chain = 'platform' and seq = 2`,
		];
		for (const edit of edits) await db.run(edit);
		const found = problems(await verifyAuditChains(db));
		expect(found.map((p) => [p.chain, p.seq, p.kind])).toEqual([
			["platform", 1, "edited"],
			["platform", 2, "edited"],
			["ten_x", 1, "edited"],
			["ten_x", 2, "edited"],
			["ten_x", 3, "edited"],
			["ten_x", 4, "edited"],
			["ten_x", 5, "edited"],
		]);
		expect(found.find((p) => p.chain === "ten_x" && p.seq === 5)?.problem).toBe(
			"chain ten_x: event 5 (ten_x-5) was edited: its data is not valid JSON",
		);
		expect(found[0]?.problem).toBe(
			"chain platform: event 1 (platform-1) was edited: its time is not a millisecond timestamp",
		);
	});

	it("finds a deleted event in the middle", async () => {
		await db.run(sql`delete from audit_events where chain = 'ten_x' and seq = 3`);
		const result = await verifyAuditChains(db);
		expect(problems(result)).toEqual([
			{
				chain: "ten_x",
				seq: 3,
				kind: "missing",
				problem: "chain ten_x: event 3 is missing (deleted?): event 4 (ten_x-4) follows event 2",
			},
		]);
		expect(result.ok || result.firstBad.seq).toBe(3);
	});

	it("finds a deleted first event", async () => {
		await db.run(sql`delete from audit_events where chain = 'ten_x' and seq in (1, 2)`);
		expect(problems(await verifyAuditChains(db))[0]?.problem).toBe(
			"chain ten_x: events 1 to 2 are missing (deleted?): event 3 (ten_x-3) follows the start of the chain",
		);
	});

	it("finds a truncated tail: the last event deleted, the head left", async () => {
		await db.run(sql`delete from audit_events where chain = 'ten_x' and seq = 5`);
		expect(problems(await verifyAuditChains(db))).toEqual([
			{
				chain: "ten_x",
				seq: 5,
				kind: "missing",
				problem:
					"chain ten_x: event 5 is missing (truncated): the head records event 5 but the chain ends at event 4 (ten_x-4)",
			},
		]);
	});

	it("finds a chain emptied under its head", async () => {
		await db.run(sql`delete from audit_events where chain = 'platform'`);
		expect(problems(await verifyAuditChains(db))).toEqual([
			expect.objectContaining({ chain: "platform", seq: 1, kind: "missing" }),
		]);
	});

	it("finds reordered events and says where each was written", async () => {
		// Swap events 2 and 3, through a free seq so the primary key holds at each step.
		await db.run(sql`update audit_events set seq = -1 where chain = 'ten_x' and seq = 2`);
		await db.run(sql`update audit_events set seq = 2 where chain = 'ten_x' and seq = 3`);
		await db.run(sql`update audit_events set seq = 3 where chain = 'ten_x' and seq = -1`);
		const result = await verifyAuditChains(db);
		expect(problems(result)).toEqual([
			{
				chain: "ten_x",
				seq: 2,
				id: "ten_x-3",
				kind: "moved",
				problem: "chain ten_x: event 2 (ten_x-3) was moved: it was written as event 3",
			},
			{
				chain: "ten_x",
				seq: 3,
				id: "ten_x-2",
				kind: "moved",
				problem: "chain ten_x: event 3 (ten_x-2) was moved: it was written as event 2",
			},
		]);
	});

	it("finds a forged event appended past the head, even with a valid hash", async () => {
		const [last] = await db.all<{ hash: string }>(
			sql`select hash from audit_events where chain = 'ten_x' and seq = 5`,
		);
		const forged = {
			...event("ten_x", 6),
			seq: 6,
			id: "evt_forged",
			at: new Date(START + 60_000),
			prevHash: last!.hash,
		};
		await db.insert(auditEvents).values({ ...forged, hash: await auditEventHash(forged) });
		expect(problems(await verifyAuditChains(db))).toEqual([
			{
				chain: "ten_x",
				seq: 6,
				id: "evt_forged",
				kind: "head-mismatch",
				problem:
					"chain ten_x: event 6 (evt_forged) is past the head (event 5): written without updating the head",
			},
		]);
	});

	it("finds a forged event inserted in the middle, the later events renumbered and the head moved", async () => {
		await db.run(sql`update audit_events set seq = seq + 100 where chain = 'ten_x' and seq >= 3`);
		await db.run(sql`update audit_events set seq = seq - 99 where chain = 'ten_x' and seq > 100`);
		const [second] = await db.all<{ hash: string }>(
			sql`select hash from audit_events where chain = 'ten_x' and seq = 2`,
		);
		const forged = {
			...event("ten_x", 99),
			seq: 3,
			id: "evt_forged",
			at: new Date(START),
			prevHash: second!.hash,
		};
		await db.insert(auditEvents).values({ ...forged, hash: await auditEventHash(forged) });
		await db.run(sql`update audit_heads set seq = 6 where chain = 'ten_x'`);
		const result = await verifyAuditChains(db);
		expect(result.ok || result.firstBad).toEqual({
			chain: "ten_x",
			seq: 4,
			id: "ten_x-3",
			kind: "moved",
			problem: "chain ten_x: event 4 (ten_x-3) was moved: it was written as event 3",
		});
	});

	it("finds an event whose prev_hash was rewritten with a matching hash", async () => {
		// The forger recomputes event 3's hash after changing its link: only the link gives it away.
		const [row] = await db.select().from(auditEvents).where(sql`chain = 'ten_x' and seq = 3`);
		const relinked = { ...row!, prevHash: GENESIS_HASH };
		const hash = await auditEventHash(relinked);
		await db.run(
			sql`update audit_events set prev_hash = ${GENESIS_HASH}, hash = ${hash} where chain = 'ten_x' and seq = 3`,
		);
		expect(problems(await verifyAuditChains(db))).toEqual([
			expect.objectContaining({
				seq: 3,
				kind: "broken-link",
				problem:
					"chain ten_x: event 3 (ten_x-3) does not follow event 2: its prev_hash is not that event's hash (event 2 replaced, or an event inserted or reordered)",
			}),
			expect.objectContaining({ seq: 4, kind: "broken-link" }),
		]);
	});

	it("finds a deleted or edited head", async () => {
		await db.run(sql`update audit_heads set hash = ${GENESIS_HASH} where chain = 'ten_x'`);
		await db.run(sql`delete from audit_heads where chain = 'platform'`);
		expect(problems(await verifyAuditChains(db))).toEqual([
			{
				chain: "platform",
				seq: 3,
				id: "platform-3",
				kind: "head-mismatch",
				problem: "chain platform: has no head (last event 3): the head row was deleted",
			},
			{
				chain: "ten_x",
				seq: 5,
				id: "ten_x-5",
				kind: "head-mismatch",
				problem:
					"chain ten_x: the head does not match event 5 (ten_x-5): the event was replaced, or the head edited",
			},
		]);
	});

	it("keeps chains independent", async () => {
		await db.run(sql`update audit_events set subject = 'x' where chain = 'ten_x' and seq = 2`);
		expect(problems(await verifyAuditChains(db)).map((p) => p.chain)).toEqual(["ten_x"]);
		expect(await verifyAuditChains(db, { chain: PLATFORM_CHAIN })).toEqual({
			ok: true,
			chains: 1,
			events: 3,
		});
		// The same chain name in another region is another chain.
		const usEast = temp.store.region("us-east").db;
		await appendMany(usEast, "ten_x", 2);
		expect(await verifyAuditChains(usEast)).toEqual({ ok: true, chains: 1, events: 2 });
	});

	it("verifies 1,000 events across page boundaries", { timeout: 20_000 }, async () => {
		await appendMany(db, "ten_big", 1000);
		expect(await verifyAuditChains(db, { chain: "ten_big" })).toEqual({
			ok: true,
			chains: 1,
			events: 1000,
		});
		await db.run(sql`delete from audit_events where chain = 'ten_big' and seq = 1000`);
		await db.run(sql`update audit_events set data = '{}' where chain = 'ten_big' and seq = 999`);
		expect(
			problems(await verifyAuditChains(db, { chain: "ten_big" })).map((p) => [p.seq, p.kind]),
		).toEqual([
			[999, "edited"],
			[1000, "missing"],
		]);
	});
});
