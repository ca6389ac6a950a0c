/** A validated Host value: `hostname` is what routes are keyed by, `authority` what is forwarded. */
export interface ParsedHost {
	hostname: string;
	authority: string;
}

// LDH labels of 1-63 characters, not starting or ending with a dash; 253 characters at most.
const DNS_NAME =
	/^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
const PORT = /^[0-9]{1,5}$/;
const IPV6 = /^[0-9a-f:.]+$/;

/**
 * Parses a Host header (or absolute-form authority): lower-cases it, strips the port and one
 * trailing dot, and rejects anything that is not a DNS name, an IPv4 address or a bracketed
 * IPv6 literal. Returns undefined when malformed.
 */
export function parseHost(value: string | undefined): ParsedHost | undefined {
	if (value === undefined) return undefined;
	const raw = value.toLowerCase();
	let name: string;
	let port: string | undefined;
	if (raw.startsWith("[")) {
		const end = raw.indexOf("]");
		if (end < 0) return undefined;
		name = raw.slice(0, end + 1);
		if (!IPV6.test(name.slice(1, -1))) return undefined;
		const rest = raw.slice(end + 1);
		if (rest !== "") {
			if (!rest.startsWith(":")) return undefined;
			port = rest.slice(1);
		}
	} else {
		const colon = raw.indexOf(":");
		name = colon < 0 ? raw : raw.slice(0, colon);
		if (colon >= 0) port = raw.slice(colon + 1);
		name = normalizeServerName(name) ?? "";
		if (name === "") return undefined;
	}
	if (port !== undefined && (!PORT.test(port) || Number(port) > 65535)) return undefined;
	return { hostname: name, authority: port === undefined ? name : `${name}:${port}` };
}

/** Normalises a DNS name (an SNI value or a Host without port); undefined when not a valid name. */
export function normalizeServerName(value: string): string | undefined {
	let name = value.toLowerCase();
	if (name.endsWith(".")) name = name.slice(0, -1);
	return DNS_NAME.test(name) ? name : undefined;
}
