import { startNodeEdge } from "../../edge/node/start-node-edge";
import type { Platform } from "../../functions/services/context";

export interface RunningEdge {
	httpsPort: number;
	httpPort: number;
	close(): Promise<void>;
}

/** The Node edge on the platform's store and keys: HTTPS by SNI, HTTP redirecting to it. */
export async function startEdge(
	platform: Platform,
	opts: {
		host: string;
		httpsPort: number;
		httpPort: number;
		onInstanceSuspect?: (instanceId: string) => void;
	},
): Promise<RunningEdge> {
	return startNodeEdge({
		store: platform.store,
		secrets: platform.secrets,
		host: opts.host,
		httpsPort: opts.httpsPort,
		httpPort: opts.httpPort,
		logger: platform.logger,
		clock: platform.clock,
		onInstanceSuspect: opts.onInstanceSuspect,
	});
}
