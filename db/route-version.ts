import { sql } from "drizzle-orm";
import type { RegionDb } from "./client";
import { routeVersion } from "./schema/region";

/** A region database or a transaction on it: what a write inside a service receives. */
export type RegionTx = Parameters<Parameters<RegionDb["transaction"]>[0]>[0];
export type RegionWriter = RegionDb | RegionTx;

/**
 * Bumps the region's route version. Call it in the same transaction as any change the edge
 * must see (routes, tenant status, certificates, node health), so the edge reloads it.
 */
export async function bumpRouteVersion(tx: RegionWriter, now: Date): Promise<void> {
	await tx
		.insert(routeVersion)
		.values({ id: 1, version: 1, updatedAt: now })
		.onConflictDoUpdate({
			target: routeVersion.id,
			set: { version: sql`${routeVersion.version} + 1`, updatedAt: now },
		});
}

export async function readRouteVersion(db: RegionWriter): Promise<number> {
	const [row] = await db.select({ version: routeVersion.version }).from(routeVersion).limit(1);
	return row?.version ?? 0;
}
