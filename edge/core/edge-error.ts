/** Why the edge answered itself instead of proxying. */
export type EdgeErrorCode =
	| "bad_request"
	| "method_not_allowed"
	| "unknown_host"
	| "misdirected_request"
	| "tenant_suspended"
	| "tenant_deleted"
	| "tenant_not_ready"
	| "no_healthy_instance"
	| "request_header_fields_too_large"
	| "request_timeout"
	| "bad_gateway"
	| "gateway_timeout"
	| "internal_error";

/** The platform's one error shape, `{ error: { code, message, requestId } }`. */
export interface EdgeErrorBody {
	error: { code: EdgeErrorCode; message: string; requestId: string };
}

export function edgeErrorBody(code: EdgeErrorCode, message: string, requestId: string): string {
	const body: EdgeErrorBody = { error: { code, message, requestId } };
	return JSON.stringify(body);
}
