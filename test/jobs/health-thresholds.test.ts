import { describe, expect, it } from "vitest";
import {
	type HealthCounters,
	isInTransition,
	nextHealth,
} from "../../functions/jobs/health-thresholds";

const LETTER = { healthy: "h", unhealthy: "d", unknown: "?" } as const;

/** Feeds probe results (1 = ok, 0 = failed); returns the state after each: h, d (down) or ?. */
function run(start: HealthCounters["state"], results: string, rise = 2, fall = 3): string[] {
	let counters: HealthCounters = { state: start, consecutiveSuccesses: 0, consecutiveFailures: 0 };
	return [...results].map((r) => {
		counters = nextHealth(counters, r === "1", { rise, fall });
		return LETTER[counters.state];
	});
}

const states = (s: string) => [...s];

describe("rise and fall thresholds", () => {
	it("marks a healthy node unhealthy only after 3 failures in a row", () => {
		expect(run("healthy", "001000")).toEqual(states("hhhhhd"));
	});

	it("needs 2 successes in a row to bring an unhealthy node back", () => {
		expect(run("unhealthy", "101011")).toEqual(states("dddddh"));
	});

	it("does not oscillate under a node that alternates: it stays where it was", () => {
		expect(run("healthy", "01".repeat(20))).toEqual(states("h".repeat(40)));
		expect(run("unhealthy", "10".repeat(20))).toEqual(states("d".repeat(40)));
		// Two failures, one success, two failures: never three in a row.
		expect(run("healthy", "001001001")).toEqual(states("hhhhhhhhh"));
	});

	it("takes an unknown node either way by the same thresholds", () => {
		const up = nextHealth(
			nextHealth({ state: "unknown", consecutiveSuccesses: 0, consecutiveFailures: 0 }, true),
			true,
		);
		expect(up).toMatchObject({ state: "healthy", changedFrom: "unknown" });
		expect(run("unknown", "000")).toEqual(states("??d"));
		expect(run("unknown", "011")).toEqual(states("??h"));
	});

	it("reports the change once, on the probe that makes it", () => {
		let c: HealthCounters = { state: "healthy", consecutiveSuccesses: 5, consecutiveFailures: 0 };
		const changes: string[] = [];
		for (const ok of [false, false, false, false, false, true, true, true]) {
			const step = nextHealth(c, ok);
			if (step.changedFrom) changes.push(`${step.changedFrom}->${step.state}`);
			c = step;
		}
		expect(changes).toEqual(["healthy->unhealthy", "unhealthy->healthy"]);
	});

	it("honours other thresholds (fall 1 flips on the first failure)", () => {
		expect(run("healthy", "0", 1, 1)).toEqual(["d"]);
		expect(run("unhealthy", "1", 1, 1)).toEqual(["h"]);
		expect(run("healthy", "0000", 2, 5)).toEqual(states("hhhh"));
	});

	it("says when a node is on its way to a change (what the fast probe pass looks at)", () => {
		expect(
			isInTransition({ state: "healthy", consecutiveSuccesses: 0, consecutiveFailures: 1 }),
		).toBe(true);
		expect(
			isInTransition({ state: "healthy", consecutiveSuccesses: 3, consecutiveFailures: 0 }),
		).toBe(false);
		expect(
			isInTransition({ state: "unhealthy", consecutiveSuccesses: 1, consecutiveFailures: 0 }),
		).toBe(true);
		expect(
			isInTransition({ state: "unhealthy", consecutiveSuccesses: 0, consecutiveFailures: 7 }),
		).toBe(false);
	});
});
