import type { ControlStore } from "../../db/store";
import { loadRouteSnapshot, readCombinedRouteVersion } from "../../edge/load-route-snapshot";
import {
	KV_VALUE_LIMIT_BYTES,
	ROUTE_SNAPSHOT_KEY,
	ROUTE_SNAPSHOT_VERSION_KEY,
} from "../../edge/workers/route-snapshot-keys";

/** Where the snapshot goes: a Workers KV namespace binding (`env.ROUTES`) is one. */
export interface RouteSnapshotSink {
	get(key: string): Promise<string | null>;
	put(key: string, value: string): Promise<void>;
}

export interface PublishedRouteSnapshot {
	/** The combined route version now in the sink, e.g. "eu-central:12,us-east:4". */
	version: string;
	/** Hostnames in the snapshot written; undefined when nothing was written (it was not read). */
	hosts: number | undefined;
	/** False when the sink already held this version. */
	published: boolean;
}

export class RouteSnapshotTooLargeError extends Error {
	override name = "RouteSnapshotTooLargeError";
}

/**
 * Writes the route snapshot for the Workers edge when the store's route version differs from
 * the one in the sink: an unchanged table costs the version reads and one small sink read.
 * The snapshot is written before its version key, so an edge that sees the new version finds
 * the new snapshot (or, with KV's per-key propagation, retries it at its next check).
 */
export async function publishRouteSnapshot(
	store: ControlStore,
	sink: RouteSnapshotSink,
): Promise<PublishedRouteSnapshot> {
	const version = await readCombinedRouteVersion(store);
	if ((await sink.get(ROUTE_SNAPSHOT_VERSION_KEY)) === version) {
		return { version, hosts: undefined, published: false };
	}
	const snapshot = await loadRouteSnapshot(store);
	const text = JSON.stringify(snapshot);
	const bytes = new TextEncoder().encode(text).byteLength;
	if (bytes > KV_VALUE_LIMIT_BYTES) {
		// KV would refuse it anyway; say why, with the numbers, instead of its generic error.
		throw new RouteSnapshotTooLargeError(
			`the route snapshot is ${bytes} bytes for ${snapshot.hosts.length} hostnames, over the ` +
				`${KV_VALUE_LIMIT_BYTES}-byte KV value limit (see docs/adr/0007 on sharding)`,
		);
	}
	await sink.put(ROUTE_SNAPSHOT_KEY, text);
	// The loaded snapshot's own version: a change racing this call is published by the next one.
	await sink.put(ROUTE_SNAPSHOT_VERSION_KEY, snapshot.version);
	return { version: snapshot.version, hosts: snapshot.hosts.length, published: true };
}
