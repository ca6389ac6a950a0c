/** The edge worker's `[vars]`; every one optional. */
export interface EdgeVars {
	/** Seconds between checks of the snapshot version in KV, per isolate (default 5; 0: always). */
	ROUTE_REFRESH_SECONDS?: string;
	/** Seconds to wait for an instance's response headers before answering 504 (default 30). */
	UPSTREAM_TIMEOUT_SECONDS?: string;
	/** `Retry-After` on 503 answers, whole seconds (default 5). */
	RETRY_AFTER_SECONDS?: string;
}

export interface EdgeSettings {
	refreshMs: number;
	upstreamTimeoutMs: number;
	retryAfterSeconds: number;
}

export class EdgeSettingsError extends Error {
	override name = "EdgeSettingsError";
}

/** Reads the vars once per isolate; a bad value names the var and the rule, never defaults. */
export function readEdgeSettings(vars: EdgeVars): EdgeSettings {
	return {
		refreshMs: seconds(vars, "ROUTE_REFRESH_SECONDS", 5, { min: 0 }) * 1000,
		upstreamTimeoutMs: seconds(vars, "UPSTREAM_TIMEOUT_SECONDS", 30, { min: 0.001 }) * 1000,
		retryAfterSeconds: seconds(vars, "RETRY_AFTER_SECONDS", 5, { min: 1, integer: true }),
	};
}

function seconds(
	vars: EdgeVars,
	name: keyof EdgeVars,
	fallback: number,
	rule: { min: number; integer?: boolean },
): number {
	const raw = vars[name];
	if (raw === undefined || raw === "") return fallback;
	const value = Number(raw);
	const ok =
		Number.isFinite(value) && value >= rule.min && (!rule.integer || Number.isInteger(value));
	if (!ok) {
		const kind = rule.integer ? "a whole number of seconds" : "a number of seconds";
		throw new EdgeSettingsError(`${name} must be ${kind} >= ${rule.min}, got "${raw}"`);
	}
	return value;
}
