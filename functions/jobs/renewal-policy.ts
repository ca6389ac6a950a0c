import type { RenewalWindow } from "../providers/types";

export const DAY_MS = 24 * 60 * 60 * 1000;
/** A certificate this close to expiry whose renewal fails raises an alert. */
export const EXPIRY_ALERT_MS = 7 * DAY_MS;
/** How often a certificate of an ARI-capable issuer asks its CA for a window (RFC 9773 suggests daily-ish polling; CAs answer with Retry-After). */
export const DEFAULT_ARI_POLL_MS = 6 * 60 * 60 * 1000;

/** When a third of the lifetime remains: the default due time (the generated `renewal_due_at`). */
export function oneThirdRemainingAt(cert: { notBefore: Date; notAfter: Date }): Date {
	const lifetime = cert.notAfter.getTime() - cert.notBefore.getTime();
	return new Date(cert.notAfter.getTime() - Math.trunc(lifetime / 3));
}

const BACKOFF_BASE_MS = 5 * 60_000;
const BACKOFF_CAP_MS = 6 * 60 * 60_000;
/** Near expiry the wait is capped lower, so a recovered CA is tried again soon. */
const BACKOFF_CAP_NEAR_EXPIRY_MS = 60 * 60_000;

/**
 * Wait after the n-th failed renewal in a row: 5 min, 10 min, 20 min ... capped at 6 h (1 h
 * within 7 days of expiry), times 0.5-1.0 so runners that failed together do not retry together.
 */
export function renewalBackoffMs(
	attempts: number,
	random: () => number,
	remainingMs: number,
): number {
	const cap = remainingMs <= EXPIRY_ALERT_MS ? BACKOFF_CAP_NEAR_EXPIRY_MS : BACKOFF_CAP_MS;
	const base = Math.min(cap, BACKOFF_BASE_MS * 2 ** Math.max(0, attempts - 1));
	return Math.round(base * (0.5 + random() / 2));
}

export type AriDecision =
	| { renew: true }
	/** Not yet: look again at `next` (a random point in the window, or the CA's Retry-After). */
	| { renew: false; next: Date };

/**
 * RFC 9773 §4.2: renew once the window has begun; otherwise at a uniformly random point inside
 * it, unless the CA asked to be polled again before then.
 */
export function decideByWindow(
	window: RenewalWindow,
	now: Date,
	random: () => number,
	pollMs: number = DEFAULT_ARI_POLL_MS,
): AriDecision {
	if (window.start.getTime() <= now.getTime()) return { renew: true };
	const span = window.end.getTime() - window.start.getTime();
	const pick = window.start.getTime() + Math.floor(random() * span);
	const poll = window.retryAfter?.getTime() ?? now.getTime() + pollMs;
	return { renew: false, next: new Date(Math.max(now.getTime() + 1, Math.min(pick, poll))) };
}
