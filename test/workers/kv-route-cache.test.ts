import { describe, expect, it } from "vitest";
import type { RouteSnapshot } from "../../edge/core/route-snapshot";
import { KvRouteCache } from "../../edge/workers/kv-route-cache";
import {
	ROUTE_SNAPSHOT_KEY,
	ROUTE_SNAPSHOT_VERSION_KEY,
} from "../../edge/workers/route-snapshot-keys";
import type { Logger } from "../../functions/runtime";
import { EU, host, instance } from "../edge/helpers/snapshots";
import { FakeClock } from "../helpers/fake-clock";

/** KV as the cache sees it: a map, every read counted; reads can be held or failed. */
class FakeKv {
	readonly values = new Map<string, string>();
	readonly reads: string[] = [];
	failWith: Error | undefined;
	#held: Array<() => void> | undefined;

	async get(key: string): Promise<string | null> {
		this.reads.push(key);
		if (this.#held) await new Promise<void>((resolve) => this.#held!.push(resolve));
		if (this.failWith) throw this.failWith;
		return this.values.get(key) ?? null;
	}

	publish(snapshot: RouteSnapshot, options: { versionKey?: string } = {}): void {
		this.values.set(ROUTE_SNAPSHOT_KEY, JSON.stringify(snapshot));
		this.values.set(ROUTE_SNAPSHOT_VERSION_KEY, options.versionKey ?? snapshot.version);
	}

	/** Reads wait until `release()`: lets a test have several callers in flight at once. */
	hold(): void {
		this.#held = [];
	}

	release(): void {
		const waiting = this.#held ?? [];
		this.#held = undefined;
		for (const resume of waiting) resume();
	}
}

function snapshotOf(version: string, hostnames: string[]): RouteSnapshot {
	return {
		version,
		hosts: hostnames.map((h) => host(h)),
		instances: [instance("eu-1", EU)],
	};
}

function setup(refreshMs = 5_000) {
	const kv = new FakeKv();
	const clock = new FakeClock();
	const logs: Array<{ level: string; message: string }> = [];
	const logger: Logger = { log: (level, message) => logs.push({ level, message }) };
	const cache = new KvRouteCache({
		source: kv,
		refreshMs,
		now: () => clock.now().getTime(),
		logger,
	});
	return { kv, clock, logs, cache };
}

describe("KvRouteCache", () => {
	it("reads the snapshot once, then only the small version key, once per interval", async () => {
		const { kv, clock, cache } = setup();
		kv.publish(snapshotOf("eu-central:1", ["a.example.net"]));
		const first = await cache.current();
		expect(first?.lookup("a.example.net")?.tenantId).toBe("tenant-a.example.net");
		expect(kv.reads).toEqual([ROUTE_SNAPSHOT_VERSION_KEY, ROUTE_SNAPSHOT_KEY]);

		clock.advance(4_999);
		expect(await cache.current()).toBe(first);
		expect(kv.reads).toHaveLength(2);

		clock.advance(1);
		expect(await cache.current()).toBe(first);
		expect(kv.reads).toEqual([
			ROUTE_SNAPSHOT_VERSION_KEY,
			ROUTE_SNAPSHOT_KEY,
			ROUTE_SNAPSHOT_VERSION_KEY,
		]);
	});

	it("rebuilds the table when the version moves, at the next check and not before", async () => {
		const { kv, clock, cache } = setup();
		kv.publish(snapshotOf("eu-central:1", ["a.example.net"]));
		await cache.current();
		kv.publish(snapshotOf("eu-central:2", ["a.example.net", "b.example.net"]));
		clock.advance(1_000);
		expect((await cache.current())?.lookup("b.example.net")).toBeUndefined();
		clock.advance(4_000);
		const table = await cache.current();
		expect(table?.version).toBe("eu-central:2");
		expect(table?.lookup("b.example.net")).toBeDefined();
	});

	it("keeps the last table when KV fails or holds something that is not a snapshot", async () => {
		const { kv, clock, logs, cache } = setup();
		kv.publish(snapshotOf("eu-central:1", ["a.example.net"]));
		const good = await cache.current();

		kv.failWith = new Error("KV GET failed: 500 Internal Server Error");
		clock.advance(5_000);
		expect(await cache.current()).toBe(good);
		kv.failWith = undefined;

		kv.values.set(ROUTE_SNAPSHOT_KEY, '{"hosts":"nope"}');
		kv.values.set(ROUTE_SNAPSHOT_VERSION_KEY, "eu-central:2");
		clock.advance(5_000);
		expect(await cache.current()).toBe(good);
		expect(logs.filter((l) => l.level === "error").map((l) => l.message)).toEqual([
			"edge: route snapshot refresh failed; serving the last routes",
			"edge: route snapshot refresh failed; serving the last routes",
		]);
		// A failed check waits for the next interval like a successful one: KV is not hammered.
		const reads = kv.reads.length;
		clock.advance(4_999);
		await cache.current();
		expect(kv.reads).toHaveLength(reads);
	});

	it("re-reads a snapshot that lags behind its version key until the two agree", async () => {
		const { kv, clock, cache } = setup();
		kv.publish(snapshotOf("eu-central:1", ["a.example.net"]));
		const first = await cache.current();
		// KV propagates per key: this location sees the new version key before the new snapshot.
		kv.values.set(ROUTE_SNAPSHOT_VERSION_KEY, "eu-central:2");
		clock.advance(5_000);
		expect(await cache.current()).toBe(first);
		kv.publish(snapshotOf("eu-central:2", ["b.example.net"]));
		clock.advance(5_000);
		expect((await cache.current())?.version).toBe("eu-central:2");
	});

	it("answers undefined while nothing is published, and asks again on the next call", async () => {
		const { kv, logs, cache } = setup(60_000);
		expect(await cache.current()).toBeUndefined();
		expect(await cache.current()).toBeUndefined();
		expect(logs.filter((l) => l.level === "warn")).toHaveLength(1);
		// No table to fall back on: the interval does not apply, the next caller reads again.
		kv.publish(snapshotOf("eu-central:1", ["a.example.net"]));
		expect((await cache.current())?.version).toBe("eu-central:1");
	});

	it("shares one refresh among concurrent callers; with a table they do not wait for it", async () => {
		const { kv, clock, cache } = setup();
		kv.publish(snapshotOf("eu-central:1", ["a.example.net"]));
		kv.hold();
		const kept: Array<Promise<void>> = [];
		const callers = [cache.current((w) => kept.push(w)), cache.current((w) => kept.push(w))];
		kv.release();
		const [a, b] = await Promise.all(callers);
		expect(a).toBeDefined();
		expect(b).toBe(a);
		expect(kept).toHaveLength(1);
		expect(kv.reads).toEqual([ROUTE_SNAPSHOT_VERSION_KEY, ROUTE_SNAPSHOT_KEY]);

		kv.publish(snapshotOf("eu-central:2", ["a.example.net"]));
		clock.advance(5_000);
		kv.hold();
		const refreshing = cache.current();
		// While the first caller refreshes, the next one is served the current table at once.
		expect(await cache.current()).toBe(a);
		kv.release();
		expect((await refreshing)?.version).toBe("eu-central:2");
	});
});
