import type { Platform } from "../../functions/services/context";
import { registerNode } from "../../functions/services/nodes";
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
		const url = `http://${host}:${origin.port}`;
		await registerNode({
			ctx: { platform, actor: "system:start" },
			input: {
				regionId: region.id,
				name: `demo-${region.id}`,
				address: "127.0.0.1",
				healthUrl: `${url}/healthz`,
				instanceUrls: [url],
			},
		});
	}
	return started;
}
