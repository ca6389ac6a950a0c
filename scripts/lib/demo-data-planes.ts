import { eq } from "drizzle-orm";
import { bumpRouteVersion } from "../../db/route-version";
import { instances, nodes } from "../../db/schema/region";
import type { Platform } from "../../functions/services/context";
import { startDemoOrigin } from "../demo-origin";

export interface DemoOrigin {
	regionId: string;
	port: number;
	close(): Promise<void>;
}

/**
 * The embedded default's data planes: one small origin per region on this machine, recorded as
 * that region's node and instance so tenants answer on the first try. Their ports change from
 * start to start, so the instance URL is rewritten (and the edge told) each time.
 */
export async function seedDemoDataPlanes(platform: Platform, host: string): Promise<DemoOrigin[]> {
	const started: DemoOrigin[] = [];
	for (const region of platform.store.regions()) {
		const origin = await startDemoOrigin({ regionId: region.id, port: 0, host });
		started.push({ regionId: region.id, port: origin.port, close: async () => origin.close() });
		const nodeId = `node_demo_${region.id}`;
		const url = `http://${host}:${origin.port}`;
		const now = platform.clock.now();
		await region.db.transaction(async (tx) => {
			await tx
				.insert(nodes)
				.values({
					id: nodeId,
					regionId: region.id,
					name: `demo-${region.id}`,
					address: "127.0.0.1",
					healthUrl: `${url}/healthz`,
					state: "healthy",
					updatedAt: now,
				})
				.onConflictDoUpdate({
					target: nodes.id,
					set: { healthUrl: `${url}/healthz`, updatedAt: now },
				});
			await tx.delete(instances).where(eq(instances.nodeId, nodeId));
			await tx
				.insert(instances)
				.values({ id: `ins_demo_${region.id}`, nodeId, url, createdAt: now });
			await bumpRouteVersion(tx, now);
		});
	}
	return started;
}
