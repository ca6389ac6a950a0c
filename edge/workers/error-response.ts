import { type EdgeErrorCode, edgeErrorBody } from "../core/edge-error";

export interface EdgeErrorReply {
	status: number;
	code: EdgeErrorCode;
	message: string;
	retryAfter?: number | undefined;
}

/** The shared JSON error shape, with the same headers the Node adapter sends. */
export function errorResponse(reply: EdgeErrorReply, requestId: string): Response {
	const headers = new Headers({
		"content-type": "application/json",
		"cache-control": "no-store",
		"x-request-id": requestId,
	});
	if (reply.retryAfter !== undefined) headers.set("retry-after", String(reply.retryAfter));
	return new Response(edgeErrorBody(reply.code, reply.message, requestId), {
		status: reply.status,
		headers,
	});
}
