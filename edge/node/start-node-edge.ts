import {
	createServer as createHttpServer,
	type IncomingMessage,
	type Server,
	type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import type { ControlStore } from "../../db/store";
import { type Clock, type Logger, silentLogger, systemClock } from "../../functions/runtime";
import type { SecretBox } from "../../functions/secrets/secret-box";
import { type DecideOptions, decide, decideHttpsRedirect, type EdgeRequest } from "../core/decide";
import { requestIdFor } from "../core/request-id";
import type { RouteTable } from "../core/route-table";
import { type EdgeErrorReply, sendError, writeRawError, writeRawResponse } from "./error-response";
import { InstanceAgents } from "./instance-agents";
import { proxyHttp } from "./proxy-http";
import { proxyUpgrade } from "./proxy-upgrade";
import { RouteReloader } from "./route-reloader";
import { DEFAULT_TIMEOUTS, type EdgeTimeouts, type UpstreamContext } from "./upstream-exchange";

export interface NodeEdgeOptions {
	store: ControlStore;
	/** Opens the certificates' private keys. */
	secrets: SecretBox;
	/** 0 picks a free port (see `NodeEdge.httpsPort`). */
	httpsPort: number;
	httpPort: number;
	/** Listen address; default 0.0.0.0. */
	host?: string;
	/** The HTTPS port clients see, for redirects (default: the listening port). */
	publicHttpsPort?: number;
	logger?: Logger;
	clock?: Clock;
	/** [0, 1) source for spreading load across instances; default Math.random. */
	random?: () => number;
	/** How often every region's route version is polled; default 250 ms. */
	reloadIntervalMs?: number;
	timeouts?: Partial<EdgeTimeouts>;
	/** Largest request head accepted, in bytes; larger ones get 431. Default 16 KiB. */
	maxHeaderSize?: number;
	/** `Retry-After` seconds on 503 answers; default 5. */
	retryAfterSeconds?: number;
	/** Told when a connection to an instance fails; the health checks decide what it means. */
	onInstanceSuspect?: (instanceId: string) => void;
}

export interface NodeEdge {
	httpsPort: number;
	httpPort: number;
	/** The route table in use. */
	table(): RouteTable;
	/** Rebuilds routes and certificates from the store now. */
	reload(): Promise<void>;
	close(): Promise<void>;
}

/**
 * The Node edge: HTTPS with each tenant's certificate chosen by SNI, HTTP redirecting to it,
 * and a streaming proxy. Every request is routed by `decide`; this file only wires sockets.
 */
export async function startNodeEdge(options: NodeEdgeOptions): Promise<NodeEdge> {
	const logger = options.logger ?? silentLogger;
	const host = options.host ?? "0.0.0.0";
	const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
	const maxHeaderSize = options.maxHeaderSize ?? 16 * 1024;
	const decideOptions: DecideOptions = {
		...(options.random ? { random: options.random } : {}),
		...(options.retryAfterSeconds !== undefined
			? { retryAfterSeconds: options.retryAfterSeconds }
			: {}),
	};
	const agents = new InstanceAgents();
	const upstream: UpstreamContext = {
		agents,
		timeouts,
		onInstanceSuspect(instanceId) {
			logger.log("warn", "edge: instance suspect", { instanceId });
			options.onInstanceSuspect?.(instanceId);
		},
	};
	const routes = new RouteReloader({
		store: options.store,
		secrets: options.secrets,
		clock: options.clock ?? systemClock,
		logger,
		intervalMs: options.reloadIntervalMs ?? 250,
		onSwap: ({ table }) => agents.retain(table.instances()),
	});
	await routes.load();

	const https = createHttpsServer({
		SNICallback(serverName, done) {
			// No default certificate: an unknown name fails the handshake rather than show a tenant's.
			routes.current.certificates.contextFor(serverName).then(
				(context) => (context ? done(null, context) : done(new Error("unknown server name"))),
				(err: Error) => done(err),
			);
		},
		minVersion: "TLSv1.2",
		maxHeaderSize,
		// decide() answers a missing Host, in the shared error shape.
		requireHostHeader: false,
		headersTimeout: timeouts.clientHeadersMs,
		// Streaming uploads may take long; idle sockets are bounded by `timeout` below instead.
		requestTimeout: 0,
	});
	https.timeout = timeouts.idleMs;
	const http = createHttpServer({
		maxHeaderSize,
		requireHostHeader: false,
		headersTimeout: timeouts.clientHeadersMs,
	});
	http.timeout = timeouts.idleMs;

	const edgeRequest = (req: IncomingMessage, sni?: string): EdgeRequest => ({
		host: hostHeader(req),
		sni,
		method: req.method ?? "",
		target: req.url ?? "",
	});
	const serverName = (req: IncomingMessage) => (req.socket as TLSSocket).servername || undefined;

	https.on("request", (req: IncomingMessage, res: ServerResponse) => {
		const requestId = requestIdFor(singleValue(req.headers["x-request-id"]));
		try {
			const decision = decide(
				routes.current.table,
				edgeRequest(req, serverName(req)),
				decideOptions,
			);
			if (decision.kind === "reply") sendError(req, res, decision, requestId);
			else proxyHttp(upstream, req, res, decision, requestId);
		} catch (err) {
			// A bug here must cost one request, not the process and every connection on it.
			logger.log("error", "edge: request failed", { requestId, reason: String(err) });
			sendError(req, res, INTERNAL_ERROR, requestId);
		}
	});
	// Upgraded sockets leave the server's connection tracking: close() ends them itself.
	const tunnels = new Set<Duplex>();
	https.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
		socket.on("error", () => socket.destroy());
		tunnels.add(socket);
		socket.on("close", () => tunnels.delete(socket));
		const requestId = requestIdFor(singleValue(req.headers["x-request-id"]));
		try {
			const decision = decide(
				routes.current.table,
				edgeRequest(req, serverName(req)),
				decideOptions,
			);
			if (decision.kind === "reply") writeRawError(socket, decision, requestId);
			else proxyUpgrade(upstream, req, socket, head, decision, requestId);
		} catch (err) {
			logger.log("error", "edge: upgrade failed", { requestId, reason: String(err) });
			writeRawError(socket, INTERNAL_ERROR, requestId);
		}
	});

	let publicHttpsPort = options.publicHttpsPort ?? options.httpsPort;
	const redirect = (req: IncomingMessage) => {
		const requestId = requestIdFor(singleValue(req.headers["x-request-id"]));
		return {
			requestId,
			decision: decideHttpsRedirect(routes.current.table, edgeRequest(req), publicHttpsPort),
		};
	};
	http.on("request", (req: IncomingMessage, res: ServerResponse) => {
		const { requestId, decision } = redirect(req);
		if (decision.kind === "reply") return sendError(req, res, decision, requestId);
		res.writeHead(decision.status, {
			location: decision.location,
			"content-length": 0,
			"x-request-id": requestId,
		});
		res.end();
	});
	http.on("upgrade", (req: IncomingMessage, socket: Duplex) => {
		socket.on("error", () => socket.destroy());
		const { requestId, decision } = redirect(req);
		if (decision.kind === "reply") return writeRawError(socket, decision, requestId);
		writeRawResponse(socket, decision.status, [
			["location", decision.location],
			["x-request-id", requestId],
		]);
	});

	for (const server of [https, http]) {
		// CONNECT never reaches "request"; decide() refuses it like any other request.
		server.on("connect", (req: IncomingMessage, socket: Duplex) => {
			socket.on("error", () => socket.destroy());
			const requestId = requestIdFor(undefined);
			const decision = decide(routes.current.table, edgeRequest(req), decideOptions);
			if (decision.kind === "reply") writeRawError(socket, decision, requestId);
			else socket.destroy();
		});
		server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) => {
			if (err.code === "ECONNRESET" || !socket.writable) {
				socket.destroy();
				return;
			}
			writeRawError(socket, clientErrorReply(err), requestIdFor(undefined));
		});
	}
	https.on("tlsClientError", (err: Error, socket: TLSSocket) => {
		logger.log("debug", "edge: TLS handshake failed", {
			reason: err.message,
			servername: socket.servername,
		});
	});

	const httpsPort = await listen(https, options.httpsPort, host);
	const httpPort = await listen(http, options.httpPort, host).catch(async (err) => {
		await closeServer(https);
		throw err;
	});
	publicHttpsPort = options.publicHttpsPort ?? httpsPort;
	routes.start();
	logger.log("info", "edge: listening", { host, httpsPort, httpPort });

	return {
		httpsPort,
		httpPort,
		table: () => routes.current.table,
		reload: () => routes.load(),
		async close() {
			await routes.stop();
			for (const socket of tunnels) socket.destroy();
			await Promise.all([closeServer(https), closeServer(http)]);
			agents.destroy();
		},
	};
}

const INTERNAL_ERROR: EdgeErrorReply = {
	status: 500,
	code: "internal_error",
	message: "the edge failed to handle this request",
};

/** The Host header; several Host headers are joined, which makes the value malformed (400). */
function hostHeader(req: IncomingMessage): string | undefined {
	let found: string | undefined;
	const raw = req.rawHeaders;
	for (let i = 0; i < raw.length; i += 2) {
		if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === "host") {
			found = found === undefined ? raw[i + 1]! : `${found}, ${raw[i + 1]}`;
		}
	}
	return found;
}

function singleValue(value: string | string[] | undefined): string | undefined {
	return Array.isArray(value) ? undefined : value;
}

function clientErrorReply(err: NodeJS.ErrnoException): EdgeErrorReply {
	if (err.code === "HPE_HEADER_OVERFLOW") {
		return {
			status: 431,
			code: "request_header_fields_too_large",
			message: "the request headers are too large",
		};
	}
	if (err.code === "ERR_HTTP_REQUEST_TIMEOUT") {
		return { status: 408, code: "request_timeout", message: "the request headers took too long" };
	}
	return { status: 400, code: "bad_request", message: "malformed HTTP request" };
}

function listen(server: Server, port: number, host: string): Promise<number> {
	return new Promise((resolve, reject) => {
		server.once("error", reject);
		server.listen(port, host, () => {
			server.off("error", reject);
			const address = server.address();
			resolve(typeof address === "object" && address ? address.port : port);
		});
	});
}

function closeServer(server: Server): Promise<void> {
	return new Promise((resolve) => {
		if (!server.listening) return resolve();
		server.close(() => resolve());
		server.closeAllConnections();
	});
}
