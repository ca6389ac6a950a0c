import type { Clock } from "../../functions/runtime";

/** A clock tests move by hand: jobs, backoff and leases are exercised without sleeping. */
export class FakeClock implements Clock {
	#now: number;

	constructor(start = Date.parse("2026-11-30T10:00:00Z")) {
		this.#now = start;
	}

	now(): Date {
		return new Date(this.#now);
	}

	advance(ms: number): void {
		this.#now += ms;
	}

	set(date: Date): void {
		this.#now = date.getTime();
	}
}
