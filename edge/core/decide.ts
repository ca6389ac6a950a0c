import type { EdgeErrorCode } from "./edge-error";
import { normalizeServerName, type ParsedHost, parseHost } from "./host-name";
import { parseRequestTarget, type RequestTarget } from "./request-target";
import type { SnapshotInstance } from "./route-snapshot";
import type { RouteTable, TenantRoute } from "./route-table";

export interface EdgeRequest {
	/** The Host header as received (duplicates joined with ", ", which makes it malformed). */
	host: string | undefined;
	/** The TLS server name of the connection, when there is one. */
	sni?: string | undefined;
	method: string;
	/** The request target as received: origin-form ("/a?b"), absolute-form or "*". */
	target: string;
}

export interface ProxyDecision {
	kind: "proxy";
	tenantId: string;
	hostname: string;
	/** Host to forward (normalised, port kept). */
	authority: string;
	/** Origin-form path and query to request from the instance. */
	path: string;
	instance: SnapshotInstance;
	/** Other healthy eligible instances, best first, for a retry after a connection failure. */
	alternatives: SnapshotInstance[];
}

export interface ReplyDecision {
	kind: "reply";
	status: 400 | 403 | 404 | 405 | 410 | 421 | 503;
	code: EdgeErrorCode;
	message: string;
	/** Seconds for a `Retry-After` header (503 only). */
	retryAfter?: number;
}

export type Decision = ProxyDecision | ReplyDecision;

export interface DecideOptions {
	/** [0, 1) source used to spread load inside the preferred region; injected for tests. */
	random?: () => number;
	/** `Retry-After` on 503s; default 5 seconds. */
	retryAfterSeconds?: number;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// The edge is a reverse proxy: CONNECT would make it a tunnel, TRACE reflects credentials.
const REFUSED_METHODS = new Set(["CONNECT", "TRACE"]);

/**
 * The routing decision, the only one: Host/SNI -> tenant route -> healthy instance inside
 * the tenant's residency. Pure and synchronous; every adapter calls it and only moves bytes.
 */
export function decide(
	table: RouteTable,
	request: EdgeRequest,
	options: DecideOptions = {},
): Decision {
	const resolved = resolveRoute(table, request);
	if (resolved.kind === "reply") return resolved;
	const { route, host, target } = resolved;
	switch (route.status) {
		case "active":
			break;
		case "suspended":
			return reply(403, "tenant_suspended", "this tenant is suspended");
		case "deleted":
			return reply(410, "tenant_deleted", "this tenant has been deleted");
		default:
			return unavailable("tenant_not_ready", "this tenant is not active yet", options);
	}

	const [first, ...rest] = route.tiers;
	if (!first) {
		// Never widen residency to find capacity: no eligible instance means 503, not a leak.
		return unavailable("no_healthy_instance", "no healthy instance is available", options);
	}
	// Random rather than round robin: stateless, so it spreads the same way in a Workers isolate.
	const random = options.random ?? Math.random;
	const picked = Math.min(first.length - 1, Math.floor(random() * first.length));
	const alternatives: SnapshotInstance[] = [];
	for (let i = 1; i < first.length; i++) alternatives.push(first[(picked + i) % first.length]!);
	for (const tier of rest) alternatives.push(...tier);
	return {
		kind: "proxy",
		tenantId: route.tenantId,
		hostname: host.hostname,
		authority: host.authority,
		path: target.path,
		instance: first[picked]!,
		alternatives,
	};
}

export interface RedirectDecision {
	kind: "redirect";
	status: 308;
	location: string;
}

/**
 * What the plain-HTTP listener answers: a 308 to the same host and path over HTTPS, only for
 * hosts the edge serves, so it is not an open redirector for arbitrary Host values.
 */
export function decideHttpsRedirect(
	table: RouteTable,
	request: Omit<EdgeRequest, "sni">,
	httpsPort: number,
): RedirectDecision | ReplyDecision {
	const resolved = resolveRoute(table, request);
	if (resolved.kind === "reply") return resolved;
	const port = httpsPort === 443 ? "" : `:${httpsPort}`;
	const path = resolved.target.path === "*" ? "/" : resolved.target.path;
	return {
		kind: "redirect",
		status: 308,
		location: `https://${resolved.host.hostname}${port}${path}`,
	};
}

interface ResolvedRoute {
	kind: "resolved";
	route: TenantRoute;
	host: ParsedHost;
	target: RequestTarget;
}

/** Request line and Host/SNI checks, then the table lookup: everything before health. */
function resolveRoute(table: RouteTable, request: EdgeRequest): ResolvedRoute | ReplyDecision {
	const method = request.method;
	if (!TOKEN.test(method)) return reply(400, "bad_request", "malformed request method");
	if (REFUSED_METHODS.has(method.toUpperCase())) {
		return reply(405, "method_not_allowed", `${method} is not supported by this edge`);
	}
	const target = parseRequestTarget(method, request.target);
	if (!target) return reply(400, "bad_request", "malformed request target");
	if (!target.authority && request.host === undefined) {
		return reply(400, "bad_request", "missing Host header");
	}
	const host = target.authority ?? parseHost(request.host);
	if (!host) return reply(400, "bad_request", "malformed Host header");
	if (request.sni) {
		// One TLS connection serves one name: a Host for another tenant is misdirected, not routed.
		if (normalizeServerName(request.sni) !== host.hostname) {
			return reply(421, "misdirected_request", "the Host does not match the TLS server name");
		}
	}
	const route = table.lookup(host.hostname);
	if (!route) return reply(404, "unknown_host", "no tenant is served at this host");
	return { kind: "resolved", route, host, target };
}

function reply(
	status: ReplyDecision["status"],
	code: EdgeErrorCode,
	message: string,
): ReplyDecision {
	return { kind: "reply", status, code, message };
}

function unavailable(code: EdgeErrorCode, message: string, options: DecideOptions): ReplyDecision {
	return { kind: "reply", status: 503, code, message, retryAfter: options.retryAfterSeconds ?? 5 };
}
