import type { Logger } from "../../functions/runtime";
import type { RouteSnapshot } from "../core/route-snapshot";
import { buildRouteTable, type RouteTable } from "../core/route-table";
import { ROUTE_SNAPSHOT_KEY, ROUTE_SNAPSHOT_VERSION_KEY } from "./route-snapshot-keys";

/** What the cache reads; a Workers KV namespace binding is one. */
export interface RouteSnapshotSource {
	get(key: string): Promise<string | null>;
}

export interface KvRouteCacheOptions {
	source: RouteSnapshotSource;
	/** How long a table is used before KV is asked whether a newer version exists. */
	refreshMs: number;
	/** Milliseconds; injected so tests can move time by hand. */
	now: () => number;
	logger: Logger;
}

/**
 * The route table of one isolate, built from the snapshot the control plane writes to KV.
 * A check reads the small version key; the snapshot itself is read and the table rebuilt only
 * when that version differs from the table's. A failed or malformed read keeps the last table.
 */
export class KvRouteCache {
	#table: RouteTable | undefined;
	#checkedAt = 0;
	#refreshing: Promise<void> | undefined;
	#warnedEmpty = false;

	constructor(private readonly options: KvRouteCacheOptions) {}

	/**
	 * The table to route with; undefined when nothing was ever published (or readable).
	 * `keepAlive` receives a refresh this call starts, so the runtime lets it finish even if the
	 * request that started it ends first (`ctx.waitUntil`): other requests may be waiting on it.
	 */
	async current(keepAlive?: (work: Promise<void>) => void): Promise<RouteTable | undefined> {
		const now = this.options.now();
		if (this.#table && now - this.#checkedAt < this.options.refreshMs) return this.#table;
		if (this.#refreshing) {
			// One refresh at a time; meanwhile the current table is good enough.
			if (this.#table) return this.#table;
		} else {
			// Counted from the start of the read: a slow or failing KV is asked once per interval.
			this.#checkedAt = now;
			const refreshing = this.#refresh().finally(() => {
				this.#refreshing = undefined;
			});
			this.#refreshing = refreshing;
			keepAlive?.(refreshing);
		}
		await this.#refreshing;
		return this.#table;
	}

	async #refresh(): Promise<void> {
		const { source, logger } = this.options;
		try {
			const version = await source.get(ROUTE_SNAPSHOT_VERSION_KEY);
			if (version !== null && version === this.#table?.version) return;
			const text = await source.get(ROUTE_SNAPSHOT_KEY);
			if (text === null) {
				if (!this.#warnedEmpty) {
					logger.log("warn", "edge: no route snapshot in KV yet", { key: ROUTE_SNAPSHOT_KEY });
				}
				this.#warnedEmpty = true;
				return;
			}
			const snapshot = parseSnapshot(text);
			// KV is eventually consistent per key: the version key may be ahead of the snapshot here.
			if (snapshot.version === this.#table?.version) return;
			const table = buildRouteTable(snapshot);
			this.#table = table;
			if (table.skippedHosts.length > 0) {
				logger.log("warn", "edge: hostnames skipped (not valid DNS names)", {
					count: table.skippedHosts.length,
					first: table.skippedHosts[0],
				});
			}
			logger.log("info", "edge: routes loaded", { version: table.version, hosts: table.size });
		} catch (err) {
			logger.log("error", "edge: route snapshot refresh failed; serving the last routes", {
				reason: err instanceof Error ? err.message : String(err),
				version: this.#table?.version,
			});
		}
	}
}

function parseSnapshot(text: string): RouteSnapshot {
	const value = JSON.parse(text) as Partial<RouteSnapshot> | null;
	if (
		!value ||
		typeof value.version !== "string" ||
		!Array.isArray(value.hosts) ||
		!Array.isArray(value.instances)
	) {
		throw new Error(`${ROUTE_SNAPSHOT_KEY} is not a route snapshot (version, hosts, instances)`);
	}
	return value as RouteSnapshot;
}
