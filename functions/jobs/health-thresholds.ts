import type { HealthState } from "../../db/schema/region";

export interface HealthThresholds {
	/** Consecutive successes that make a node healthy again (default 2). */
	rise: number;
	/** Consecutive failures that make a node unhealthy (default 3). */
	fall: number;
}

export const DEFAULT_THRESHOLDS: HealthThresholds = { rise: 2, fall: 3 };

export interface HealthCounters {
	state: HealthState;
	consecutiveSuccesses: number;
	consecutiveFailures: number;
}

export interface HealthStep extends HealthCounters {
	/** The state before, when this probe changed it. */
	changedFrom?: HealthState;
}

/**
 * The node's health after one probe. A state changes only after `fall` failures or `rise`
 * successes in a row, and every result of the other kind resets the run: one lost probe never
 * flips a node, and a node that alternates stays where it is instead of oscillating.
 */
export function nextHealth(
	current: HealthCounters,
	ok: boolean,
	thresholds: HealthThresholds = DEFAULT_THRESHOLDS,
): HealthStep {
	const successes = ok ? current.consecutiveSuccesses + 1 : 0;
	const failures = ok ? 0 : current.consecutiveFailures + 1;
	let state = current.state;
	if (ok && state !== "healthy" && successes >= thresholds.rise) state = "healthy";
	if (!ok && state !== "unhealthy" && failures >= thresholds.fall) state = "unhealthy";
	return {
		state,
		consecutiveSuccesses: successes,
		consecutiveFailures: failures,
		...(state !== current.state ? { changedFrom: current.state } : {}),
	};
}

/**
 * True while the counters are on their way to a change (failing but not yet unhealthy, or
 * succeeding but not yet healthy): such nodes are probed on the fast interval to confirm.
 */
export function isInTransition(counters: HealthCounters): boolean {
	return (
		(counters.consecutiveFailures > 0 && counters.state !== "unhealthy") ||
		(counters.consecutiveSuccesses > 0 && counters.state !== "healthy")
	);
}
