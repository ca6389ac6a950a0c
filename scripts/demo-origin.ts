import { createServer } from "node:http";

export interface DemoOriginOptions {
	regionId: string;
	/** 0 picks a free port. */
	port?: number;
	/** Default 127.0.0.1: a demo data plane is only meant to be reached through the edge. */
	host?: string;
}

export interface DemoOrigin {
	regionId: string;
	port: number;
	close(): Promise<void>;
}

/**
 * A stand-in data plane for the embedded default: answers every path with the region it runs
 * in, so `curl https://acme.localhost:8443/` shows which region served the tenant.
 */
export async function startDemoOrigin(options: DemoOriginOptions): Promise<DemoOrigin> {
	const host = options.host ?? "127.0.0.1";
	const server = createServer((req, res) => {
		const body =
			req.url === "/healthz"
				? JSON.stringify({ ok: true, region: options.regionId })
				: JSON.stringify({
						region: options.regionId,
						method: req.method,
						path: req.url,
						host: req.headers.host,
						requestId: req.headers["x-request-id"],
					});
		res.writeHead(200, {
			"content-type": "application/json",
			"content-length": Buffer.byteLength(body),
		});
		res.end(body);
		// The request body, if any, is not needed: drain it so keep-alive connections stay usable.
		req.resume();
	});
	await new Promise<void>((resolve, reject) => {
		server.once("error", reject);
		server.listen(options.port ?? 0, host, () => resolve());
	});
	const address = server.address();
	const port = typeof address === "object" && address ? address.port : (options.port ?? 0);
	return {
		regionId: options.regionId,
		port,
		close: () =>
			new Promise<void>((resolve) => {
				server.close(() => resolve());
				server.closeAllConnections();
			}),
	};
}
