import { createClient } from "@libsql/client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { RegionDb } from "../../db/client";
import { openStore } from "../../db/store";
import { acquireLease, holdsLease, releaseLease, renewLease } from "../../functions/jobs/leases";
import { createTempStore, type TempStore } from "../helpers/temp-store";

const T0 = new Date("2026-11-30T10:00:00Z");
const at = (ms: number) => new Date(T0.getTime() + ms);

let temp: TempStore;
let db: RegionDb;

beforeEach(async () => {
	temp = await createTempStore();
	db = temp.store.region("eu-central").db;
});
afterEach(() => temp.close());

describe("leases", () => {
	it("gives a free lease to the first holder and refuses a second until it expires", async () => {
		const a = await acquireLease(db, { name: "job:x", holder: "a", now: T0, ttlMs: 1000 });
		expect(a).toEqual({ acquired: true, expiresAt: at(1000), resumed: false });
		const b = await acquireLease(db, { name: "job:x", holder: "b", now: at(999), ttlMs: 1000 });
		expect(b).toEqual({ acquired: false, holder: "a", expiresAt: at(1000) });
		// At expiry it is free: b takes it, and knows a left it behind.
		const later = await acquireLease(db, {
			name: "job:x",
			holder: "b",
			now: at(1000),
			ttlMs: 1000,
		});
		expect(later).toEqual({ acquired: true, expiresAt: at(2000), resumed: true });
		expect(await holdsLease(db, { name: "job:x", holder: "a" })).toBe(false);
		expect(await holdsLease(db, { name: "job:x", holder: "b" })).toBe(true);
	});

	it("gives a holder its own unexpired lease back (a restart with a stable holder id)", async () => {
		await acquireLease(db, { name: "job:x", holder: "a", now: T0, ttlMs: 60_000 });
		const again = await acquireLease(db, {
			name: "job:x",
			holder: "a",
			now: at(10),
			ttlMs: 60_000,
		});
		expect(again).toEqual({ acquired: true, expiresAt: at(60_010), resumed: true });
	});

	it("as a schedule mark (reentrant: false) refuses even its own holder until it runs out", async () => {
		const mark = { name: "schedule:x", holder: "a", ttlMs: 300_000, reentrant: false };
		expect((await acquireLease(db, { ...mark, now: T0 })).acquired).toBe(true);
		expect((await acquireLease(db, { ...mark, now: at(299_999) })).acquired).toBe(false);
		expect((await acquireLease(db, { ...mark, now: at(300_000) })).acquired).toBe(true);
	});

	it("renews only for its holder, and release frees it at once", async () => {
		await acquireLease(db, { name: "job:x", holder: "a", now: T0, ttlMs: 1000 });
		expect(await renewLease(db, { name: "job:x", holder: "b", now: at(500), ttlMs: 1000 })).toBe(
			false,
		);
		expect(await renewLease(db, { name: "job:x", holder: "a", now: at(500), ttlMs: 1000 })).toBe(
			true,
		);
		// Renewed to 1500: still a's at 1200.
		expect(
			(await acquireLease(db, { name: "job:x", holder: "b", now: at(1200), ttlMs: 1000 })).acquired,
		).toBe(false);
		await releaseLease(db, { name: "job:x", holder: "b" });
		expect(await holdsLease(db, { name: "job:x", holder: "a" })).toBe(true);
		await releaseLease(db, { name: "job:x", holder: "a" });
		const b = await acquireLease(db, { name: "job:x", holder: "b", now: at(1200), ttlMs: 1000 });
		expect(b).toEqual({ acquired: true, expiresAt: at(2200), resumed: false });
	});

	it("lets exactly one of many racing runners on separate connections take a lease", async () => {
		// Ten "processes": each its own client on the same database file.
		const stores = await Promise.all(
			Array.from({ length: 10 }, () => openStore(createClient, temp.locations)),
		);
		try {
			for (let round = 0; round < 5; round++) {
				const results = await Promise.all(
					stores.map((s, i) =>
						acquireLease(s.region("eu-central").db, {
							name: `race:${round}`,
							holder: `runner-${i}`,
							now: T0,
							ttlMs: 60_000,
						}),
					),
				);
				const winners = results.filter((r) => r.acquired);
				expect(winners).toHaveLength(1);
				const holders = new Set(results.map((r) => (r.acquired ? "" : r.holder)));
				holders.delete("");
				// Every loser names the one winner.
				expect(holders.size).toBe(1);
			}
		} finally {
			for (const s of stores) s.close();
		}
	});
});
