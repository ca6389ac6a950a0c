import { and, eq, isNull } from "drizzle-orm";
import { instances, nodes } from "../../db/schema/region";
import type { Platform } from "../services/context";

export interface SuspectNode {
	nodeId: string;
	regionId: string;
}

/**
 * A passive signal: the edge could not connect to an instance. Marks its node suspect so the
 * next fast probe pass (whichever runner holds the probe lease) probes it at once. The mark
 * changes no health by itself: only probes do, through the rise/fall thresholds.
 */
export async function markSuspect(
	platform: Pick<Platform, "store" | "clock">,
	instanceId: string,
): Promise<SuspectNode | undefined> {
	for (const region of platform.store.regions()) {
		const [instance] = await region.db
			.select({ nodeId: instances.nodeId })
			.from(instances)
			.where(eq(instances.id, instanceId))
			.limit(1);
		if (!instance) continue;
		// An older mark not yet answered stays: its time is what the fast pass compares with.
		await region.db
			.update(nodes)
			.set({ suspectAt: platform.clock.now() })
			.where(and(eq(nodes.id, instance.nodeId), isNull(nodes.suspectAt)));
		return { nodeId: instance.nodeId, regionId: region.id };
	}
	return undefined;
}
