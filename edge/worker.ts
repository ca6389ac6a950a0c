import type {
	ExecutionContext,
	ExportedHandler,
	KVNamespace,
	Response as WorkersResponse,
} from "@cloudflare/workers-types/latest";
import { jsonLogger } from "../functions/runtime";
import { decide } from "./core/decide";
import { requestIdFor } from "./core/request-id";
import { type EdgeSettings, type EdgeVars, readEdgeSettings } from "./workers/edge-settings";
import { errorResponse } from "./workers/error-response";
import { KvRouteCache } from "./workers/kv-route-cache";
import { proxyWithFetch } from "./workers/proxy-fetch";

/** The edge worker's bindings (`[env.edge]` in wrangler.toml). */
export interface EdgeEnv extends EdgeVars {
	/** Where the control plane publishes the route snapshot (publishRouteSnapshot). */
	ROUTES: KVNamespace;
}

interface EdgeIsolate {
	settings: EdgeSettings;
	routes: KvRouteCache;
}

/**
 * The Workers edge: the same routing core as the Node edge, routes from a KV snapshot (see
 * docs/adr/0007). The table lives per isolate and env, so a request pays no I/O for routing
 * except one small KV read per ROUTE_REFRESH_SECONDS. A route change therefore reaches an
 * isolate within about KV's propagation (~60 s between locations) plus that interval.
 */
const isolates = new WeakMap<EdgeEnv, EdgeIsolate>();
const logger = jsonLogger((line) => console.log(line));

function isolateFor(env: EdgeEnv): EdgeIsolate {
	let isolate = isolates.get(env);
	if (!isolate) {
		const settings = readEdgeSettings(env);
		const routes = new KvRouteCache({
			source: env.ROUTES,
			refreshMs: settings.refreshMs,
			now: Date.now,
			logger,
		});
		isolate = { settings, routes };
		isolates.set(env, isolate);
	}
	return isolate;
}

async function handle(request: Request, env: EdgeEnv, ctx: ExecutionContext): Promise<Response> {
	const requestId = requestIdFor(request.headers.get("x-request-id"));
	let isolate: EdgeIsolate;
	try {
		isolate = isolateFor(env);
	} catch (err) {
		const message = `edge misconfigured: ${err instanceof Error ? err.message : String(err)}`;
		logger.log("error", message, { requestId });
		return errorResponse({ status: 500, code: "internal_error", message }, requestId);
	}
	const { settings, routes } = isolate;
	const table = await routes.current((work) => ctx.waitUntil(work));
	if (!table) {
		return errorResponse(
			{
				status: 503,
				code: "internal_error",
				message: "the edge has no routes yet",
				retryAfter: settings.retryAfterSeconds,
			},
			requestId,
		);
	}
	const url = new URL(request.url);
	// Cloudflare terminates TLS and builds request.url from the client's Host, so there is no
	// SNI to compare (no 421 here) and the URL's authority is the Host (miniflare keeps only that).
	const decision = decide(
		table,
		{ host: url.host, method: request.method, target: url.pathname + url.search },
		{ retryAfterSeconds: settings.retryAfterSeconds },
	);
	if (decision.kind === "reply") return errorResponse(decision, requestId);
	return proxyWithFetch(request, decision, requestId, {
		upstreamTimeoutMs: settings.upstreamTimeoutMs,
		logger,
	});
}

export default {
	async fetch(request, env, ctx) {
		// Typed against the DOM's Request/Response inside; workerd's are the same objects at runtime.
		const response = await handle(request as unknown as Request, env, ctx);
		return response as unknown as WorkersResponse;
	},
} satisfies ExportedHandler<EdgeEnv>;
