import { type ParsedHost, parseHost } from "./host-name";

/** The request target as the origin should see it, plus the authority of an absolute-form target. */
export interface RequestTarget {
	/** Origin-form path and query ("/a?b"), or "*" for `OPTIONS *`. */
	path: string;
	/** Set for absolute-form targets; it replaces the Host header (RFC 9112, section 3.2.2). */
	authority?: ParsedHost;
}

const ABSOLUTE = /^https?:\/\//i;

/**
 * Parses a request target. Absolute-form (`GET http://other/ HTTP/1.1`) is accepted as the
 * RFC requires, but its authority then goes through the same Host and SNI rules as a Host
 * header, so it can never reach a host the connection was not made for.
 */
export function parseRequestTarget(method: string, target: string): RequestTarget | undefined {
	if (hasForbiddenCharacter(target)) return undefined;
	if (target.startsWith("/")) return { path: target };
	if (target === "*") return method === "OPTIONS" ? { path: "*" } : undefined;
	if (!ABSOLUTE.test(target)) return undefined;
	const rest = target.slice(target.indexOf("//") + 2);
	let end = rest.length;
	for (const stop of ["/", "?"]) {
		const at = rest.indexOf(stop);
		if (at >= 0 && at < end) end = at;
	}
	const authorityText = rest.slice(0, end);
	// Userinfo in a request target is a classic confusion vector; nothing legitimate sends it.
	if (authorityText.includes("@")) return undefined;
	const authority = parseHost(authorityText);
	if (!authority) return undefined;
	const tail = rest.slice(end);
	const path = tail.startsWith("/") ? tail : `/${tail}`;
	return { path, authority };
}

// Whitespace, control characters and fragments never belong in a target sent to an origin.
function hasForbiddenCharacter(target: string): boolean {
	for (let i = 0; i < target.length; i++) {
		const code = target.charCodeAt(i);
		if (code <= 0x20 || code === 0x7f || code === 0x23) return true;
	}
	return false;
}
