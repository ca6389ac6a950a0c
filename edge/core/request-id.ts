// Short and printable, so an incoming id can be logged and echoed without escaping.
const WELL_FORMED = /^[A-Za-z0-9._:-]{8,128}$/;

/** Keeps a well-formed incoming `x-request-id`, otherwise makes a new one. */
export function requestIdFor(
	incoming: string | null | undefined,
	generate: () => string = () => crypto.randomUUID(),
): string {
	return incoming && WELL_FORMED.test(incoming) ? incoming : generate();
}
