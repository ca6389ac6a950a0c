/**
 * Why a DNS provider call failed, in terms a caller can act on:
 * - `auth_failed`: the server refused the credential (fix the config; retrying will not help);
 * - `zone_not_served`: the configured zone does not exist on the server or account;
 * - `outside_zones`: the name lies outside every zone the provider is configured for;
 * - `invalid_record`: the record set breaks a DNS rule or a capability of the provider;
 * - `rejected`: the server refused the change for another reason it explained;
 * - `rate_limited` / `unavailable`: the server is throttling, down or unreachable: back off and retry.
 */
export type DnsProviderErrorCode =
	| "auth_failed"
	| "zone_not_served"
	| "outside_zones"
	| "invalid_record"
	| "rejected"
	| "rate_limited"
	| "unavailable";

const RETRYABLE: Record<DnsProviderErrorCode, boolean> = {
	auth_failed: false,
	zone_not_served: false,
	outside_zones: false,
	invalid_record: false,
	rejected: false,
	rate_limited: true,
	unavailable: true,
};

/**
 * The one error DNS providers throw. `retryable` tells the provisioning job whether to back off
 * and try again or to stop and report. Messages never carry a credential.
 */
export class DnsProviderError extends Error {
	override readonly name = "DnsProviderError";
	readonly retryable: boolean;

	constructor(
		readonly code: DnsProviderErrorCode,
		message: string,
		options?: { cause?: unknown },
	) {
		super(message, options);
		this.retryable = RETRYABLE[code];
	}
}

/** True for an error a job should retry later with backoff (throttled, down, unreachable). */
export function isRetryableDnsError(err: unknown): boolean {
	return err instanceof DnsProviderError && err.retryable;
}

/** Why a `fetch` threw, short and free of request details: a timeout, or the socket error code. */
export function describeNetworkFailure(err: unknown, timeoutMs: number): string {
	if (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")) {
		return `no answer within ${timeoutMs} ms`;
	}
	const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined;
	if (cause && typeof cause.code === "string") return cause.code;
	return err instanceof Error ? err.message : String(err);
}
