import { and, eq, lte, or, sql } from "drizzle-orm";
import type { RegionDb } from "../../db/client";
import type { RegionWriter } from "../../db/route-version";
import { leases } from "../../db/schema/region";

/**
 * Single-writer work through a row in the region's `leases` table: whoever holds an unexpired
 * row for a name does that work; others skip it. Acquisition is one conditional upsert, so two
 * runners racing for the same name can never both get it (the database serialises the writes).
 */

export type LeaseAcquisition =
	| {
			acquired: true;
			expiresAt: Date;
			/**
			 * The row was there before we took it (ours from before a restart, or someone's that
			 * expired): the previous holder may have stopped half-way, so idempotent work is redone.
			 */
			resumed: boolean;
	  }
	| { acquired: false; holder: string; expiresAt: Date };

/**
 * Takes the lease `name` for `holder` until now + ttlMs when it is free, expired, or already
 * held by `holder` (a restarted process with a stable holder id gets its own leases back at
 * once). `reentrant: false` refuses the holder's own unexpired lease too: a lease used as a
 * "not before" mark for periodic work.
 */
export function acquireLease(
	db: RegionDb,
	input: { name: string; holder: string; now: Date; ttlMs: number; reentrant?: boolean },
): Promise<LeaseAcquisition> {
	return acquire(db, input);
}

async function acquire(
	db: RegionDb,
	input: { name: string; holder: string; now: Date; ttlMs: number; reentrant?: boolean },
): Promise<LeaseAcquisition> {
	const expiresAt = new Date(input.now.getTime() + input.ttlMs);
	const [before] = await db
		.select({ holder: leases.holder })
		.from(leases)
		.where(eq(leases.name, input.name))
		.limit(1);
	const [row] = await db
		.insert(leases)
		.values({ name: input.name, holder: input.holder, expiresAt })
		.onConflictDoUpdate({
			target: leases.name,
			set: { holder: input.holder, expiresAt },
			// The condition is evaluated on the row as it is when this write runs, not as read above.
			setWhere:
				input.reentrant === false
					? lte(leases.expiresAt, input.now)
					: or(lte(leases.expiresAt, input.now), eq(leases.holder, input.holder)),
		})
		.returning();
	if (row) return { acquired: true, expiresAt, resumed: before !== undefined };
	const [current] = await db.select().from(leases).where(eq(leases.name, input.name)).limit(1);
	return {
		acquired: false,
		holder: current?.holder ?? "unknown",
		expiresAt: current?.expiresAt ?? input.now,
	};
}

/** Extends a lease `holder` still holds; false when someone else took it after it expired. */
export async function renewLease(
	db: RegionDb,
	input: { name: string; holder: string; now: Date; ttlMs: number },
): Promise<boolean> {
	const rows = await db
		.update(leases)
		.set({ expiresAt: new Date(input.now.getTime() + input.ttlMs) })
		.where(and(eq(leases.name, input.name), eq(leases.holder, input.holder)))
		.returning({ name: leases.name });
	return rows.length > 0;
}

/** Gives the lease back (only if `holder` has it), so the next runner need not wait for expiry. */
export async function releaseLease(
	db: RegionDb,
	input: { name: string; holder: string },
): Promise<void> {
	await db.delete(leases).where(and(eq(leases.name, input.name), eq(leases.holder, input.holder)));
}

/**
 * True while the row still names `holder`. Called inside the transaction that commits the leased
 * work (a fence): a runner paused past its expiry cannot commit over a successor that took the
 * lease; if nobody took it, finishing the work is still correct.
 */
export async function holdsLease(
	db: RegionWriter,
	input: { name: string; holder: string },
): Promise<boolean> {
	const [row] = await db
		.select({ one: sql<number>`1` })
		.from(leases)
		.where(and(eq(leases.name, input.name), eq(leases.holder, input.holder)))
		.limit(1);
	return row !== undefined;
}

export class LostLeaseError extends Error {
	override name = "LostLeaseError";
	constructor(readonly lease: string) {
		super(`lost the lease ${lease} before the work was committed`);
	}
}

/** Lease names, one place: `job:<name>` per region, `certificate:<id>`, `failover:<node id>`, `tenant-dns:<id>`. */
export const leaseNames = {
	job: (name: string) => `job:${name}`,
	certificate: (id: string) => `certificate:${id}`,
	failover: (nodeId: string) => `failover:${nodeId}`,
	tenantDns: (tenantId: string) => `tenant-dns:${tenantId}`,
	schedule: (name: string) => `schedule:${name}`,
};
