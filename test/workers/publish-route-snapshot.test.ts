import { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadRouteSnapshot } from "../../edge/load-route-snapshot";
import {
	ROUTE_SNAPSHOT_KEY,
	ROUTE_SNAPSHOT_VERSION_KEY,
} from "../../edge/workers/route-snapshot-keys";
import {
	publishRouteSnapshot,
	type RouteSnapshotSink,
} from "../../functions/services/publish-route-snapshot";
import { createTestPlatform, type TestPlatform } from "../helpers/test-platform";
import { ControlPlane } from "./helpers/control-plane";

/** Miniflare's KV (the Workers KV simulator), with every call recorded. */
function recording(kv: RouteSnapshotSink) {
	const calls: string[] = [];
	const sink: RouteSnapshotSink = {
		get: (key) => {
			calls.push(`get ${key}`);
			return kv.get(key);
		},
		put: (key, value) => {
			calls.push(`put ${key}`);
			return kv.put(key, value);
		},
	};
	return { sink, calls, puts: () => calls.filter((c) => c.startsWith("put")).length };
}

describe("publishRouteSnapshot into Workers KV", () => {
	let t: TestPlatform;
	let cp: ControlPlane;
	let mf: Miniflare;

	beforeAll(async () => {
		t = await createTestPlatform();
		cp = new ControlPlane(t);
		await cp.node({
			regionId: "eu-central",
			name: "eu-1",
			instanceUrls: ["http://127.0.0.1:9"],
		});
		await cp.tenant({ id: "ten_pub", slug: "pub-shop", homeRegion: "eu-central" });
		await cp.provision();
		// Only its KV namespace is used; the script is the smallest one workerd accepts.
		mf = new Miniflare({
			modules: true,
			script: "export default { fetch() { return new Response(null, { status: 204 }); } };",
			kvNamespaces: ["ROUTES"],
		});
	});
	afterAll(async () => {
		await mf?.dispose();
		t?.close();
	});

	it("writes the snapshot, then its version, and nothing more while the routes are unchanged", async () => {
		const kv = await mf.getKVNamespace("ROUTES");
		const { sink, calls, puts } = recording(kv);

		const first = await publishRouteSnapshot(cp.store, sink);
		expect(first).toMatchObject({ published: true, hosts: 1 });
		expect(calls).toEqual([
			`get ${ROUTE_SNAPSHOT_VERSION_KEY}`,
			`put ${ROUTE_SNAPSHOT_KEY}`,
			`put ${ROUTE_SNAPSHOT_VERSION_KEY}`,
		]);
		expect(await kv.get(ROUTE_SNAPSHOT_VERSION_KEY)).toBe(first.version);
		expect(JSON.parse((await kv.get(ROUTE_SNAPSHOT_KEY)) ?? "null")).toEqual(
			await loadRouteSnapshot(cp.store),
		);

		const again = await publishRouteSnapshot(cp.store, sink);
		expect(again).toEqual({ version: first.version, hosts: undefined, published: false });
		expect(puts()).toBe(2);
		expect(calls.at(-1)).toBe(`get ${ROUTE_SNAPSHOT_VERSION_KEY}`);

		// A route-affecting change (a new node) bumps the version: published again, two puts.
		await cp.node({
			regionId: "eu-central",
			name: "eu-2",
			instanceUrls: ["http://127.0.0.1:10"],
		});
		const changed = await publishRouteSnapshot(cp.store, sink);
		expect(changed.published).toBe(true);
		expect(changed.version).not.toBe(first.version);
		expect(puts()).toBe(4);
		const stored = JSON.parse((await kv.get(ROUTE_SNAPSHOT_KEY)) ?? "null") as {
			version: string;
			instances: unknown[];
		};
		expect(stored.version).toBe(changed.version);
		expect(stored.instances).toHaveLength(2);
	});
});
