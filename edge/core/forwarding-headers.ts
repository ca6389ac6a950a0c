// RFC 9110 section 7.6.1, plus the legacy ones still seen in the wild.
const HOP_BY_HOP = new Set([
	"connection",
	"keep-alive",
	"proxy-connection",
	"te",
	"trailer",
	"transfer-encoding",
	"upgrade",
	"http2-settings",
]);

/** Headers the edge sets itself; a client-supplied value is dropped, never trusted or appended to. */
const SET_BY_EDGE = new Set([
	"host",
	"x-forwarded-for",
	"x-forwarded-proto",
	"x-forwarded-host",
	"forwarded",
	"x-request-id",
	// The edge answers `Expect: 100-continue` itself.
	"expect",
]);

/** The edge's request id replaces any the instance sends back. */
const SET_BY_EDGE_IN_RESPONSES = new Set(["x-request-id"]);

/**
 * Decides which received headers go on to the next hop: drops hop-by-hop headers, any header
 * the `Connection` header names, `Proxy-*`, and those the edge sets itself.
 */
export class HeaderFilter {
	readonly #named: Set<string>;

	/** `connection` is every received Connection header value. */
	constructor(
		connection: readonly string[] | string | undefined,
		private readonly direction: "request" | "response",
	) {
		this.#named = new Set();
		const values = typeof connection === "string" ? [connection] : (connection ?? []);
		for (const value of values) {
			for (const token of value.split(",")) {
				const name = token.trim().toLowerCase();
				if (name) this.#named.add(name);
			}
		}
	}

	/** `name` must be lower-case. */
	keeps(name: string): boolean {
		if (HOP_BY_HOP.has(name) || this.#named.has(name) || name.startsWith("proxy-")) return false;
		return !(this.direction === "request" ? SET_BY_EDGE : SET_BY_EDGE_IN_RESPONSES).has(name);
	}
}

export interface ForwardingContext {
	/** The client's address as the edge saw it. */
	clientIp: string;
	/** The Host the client asked for (see `ProxyDecision.authority`). */
	authority: string;
	proto: "http" | "https";
	requestId: string;
}

/** The headers the edge adds to every proxied request, as [name, value] pairs. */
export function forwardingHeaders(ctx: ForwardingContext): Array<[string, string]> {
	const ip = ctx.clientIp.startsWith("::ffff:") ? ctx.clientIp.slice(7) : ctx.clientIp;
	// RFC 7239: IPv6 addresses are bracketed and quoted; the host always needs quotes (":").
	const forNode = ip.includes(":") ? `"[${ip}]"` : ip;
	return [
		["host", ctx.authority],
		["x-forwarded-for", ip],
		["x-forwarded-proto", ctx.proto],
		["x-forwarded-host", ctx.authority],
		["forwarded", `for=${forNode};host="${ctx.authority}";proto=${ctx.proto}`],
		["x-request-id", ctx.requestId],
	];
}
