import type { Violation } from "./policy/violations";

export type ErrorCode =
	| "bad_request"
	| "validation_failed"
	| "unauthorized"
	| "forbidden"
	| "not_found"
	| "conflict"
	| "payload_too_large"
	| "unavailable"
	| "internal";

const STATUS: Record<ErrorCode, 400 | 401 | 403 | 404 | 409 | 413 | 500 | 503> = {
	bad_request: 400,
	validation_failed: 400,
	unauthorized: 401,
	forbidden: 403,
	not_found: 404,
	conflict: 409,
	payload_too_large: 413,
	unavailable: 503,
	internal: 500,
};

/** The one error type services throw; the API maps it to `{ error: { code, message, requestId } }`. */
export class AppError extends Error {
	readonly status: 400 | 401 | 403 | 404 | 409 | 413 | 500 | 503;

	constructor(
		readonly code: ErrorCode,
		message: string,
		readonly violations?: Violation[],
	) {
		super(message);
		this.name = "AppError";
		this.status = STATUS[code];
	}

	static validation(violations: Violation[]): AppError {
		const summary = violations.map((v) => `${v.path}: ${v.rule}`).join("; ");
		return new AppError("validation_failed", summary, violations);
	}
}
