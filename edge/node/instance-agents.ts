import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { SnapshotInstance } from "../core/route-snapshot";

/** How to reach one instance: its parsed URL and its keep-alive connection pool. */
export interface InstanceTarget {
	hostname: string;
	port: number;
	/** Path prefix of the instance URL, "" when it is the root. */
	basePath: string;
	agent: HttpAgent;
	request: typeof httpRequest;
}

/** One keep-alive pool per instance, created on first use and dropped when the instance goes. */
export class InstanceAgents {
	readonly #targets = new Map<string, { url: string; target: InstanceTarget }>();

	get(instance: SnapshotInstance): InstanceTarget {
		const known = this.#targets.get(instance.id);
		if (known && known.url === instance.url) return known.target;
		known?.target.agent.destroy();
		const target = createTarget(instance.url);
		this.#targets.set(instance.id, { url: instance.url, target });
		return target;
	}

	/** Closes the pools of instances no longer in the route table. */
	retain(instances: Iterable<SnapshotInstance>): void {
		const keep = new Map<string, string>();
		for (const i of instances) keep.set(i.id, i.url);
		for (const [id, entry] of this.#targets) {
			if (keep.get(id) !== entry.url) {
				entry.target.agent.destroy();
				this.#targets.delete(id);
			}
		}
	}

	destroy(): void {
		for (const entry of this.#targets.values()) entry.target.agent.destroy();
		this.#targets.clear();
	}
}

function createTarget(url: string): InstanceTarget {
	const parsed = new URL(url);
	const tls = parsed.protocol === "https:";
	// LIFO hands out the most recently used socket, the one least likely to have been closed idle.
	const options = { keepAlive: true, maxFreeSockets: 256, scheduling: "lifo" as const };
	return {
		hostname: parsed.hostname.replace(/^\[|\]$/g, ""),
		port: Number(parsed.port || (tls ? 443 : 80)),
		basePath: parsed.pathname === "/" ? "" : parsed.pathname.replace(/\/$/, ""),
		agent: tls ? new HttpsAgent(options) : new HttpAgent(options),
		request: tls ? httpsRequest : httpRequest,
	};
}
