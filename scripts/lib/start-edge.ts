import type { Platform } from "../../functions/services/context";

export interface RunningEdge {
	httpsPort: number;
	httpPort: number;
	close(): Promise<void>;
}

/** Placeholder until the Node edge lands in edge/node/. */
export async function startEdge(
	_platform: Platform,
	_opts: { host: string; httpsPort: number; httpPort: number },
): Promise<RunningEdge> {
	throw new Error("the Node edge is not wired yet");
}
