import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface HealthOrigin {
	port: number;
	healthUrl: string;
	/** Requests served so far. */
	hits: number;
	/** Answer this status from now on (e.g. 503 for "up but unwell"). */
	status: number;
	/** Stops listening and drops open connections: probes then get "connection refused". */
	kill(): Promise<void>;
	/** Listens again on the same port. */
	revive(): Promise<void>;
}

/** A real HTTP origin on 127.0.0.1 whose `/health` the probes GET. */
export async function startHealthOrigin(): Promise<HealthOrigin> {
	let server: Server | undefined;
	const origin: HealthOrigin = {
		port: 0,
		healthUrl: "",
		hits: 0,
		status: 200,
		async kill() {
			const s = server;
			server = undefined;
			if (!s) return;
			s.closeAllConnections();
			await new Promise<void>((resolve) => s.close(() => resolve()));
		},
		async revive() {
			await listen(origin.port);
		},
	};
	const listen = async (port: number) => {
		const s = createServer((req, res) => {
			origin.hits++;
			res.writeHead(req.url === "/health" ? origin.status : 404, { "content-type": "text/plain" });
			res.end("ok\n");
		});
		await new Promise<void>((resolve, reject) => {
			s.once("error", reject);
			s.listen(port, "127.0.0.1", resolve);
		});
		server = s;
		origin.port = (s.address() as AddressInfo).port;
		origin.healthUrl = `http://127.0.0.1:${origin.port}/health`;
	};
	await listen(0);
	return origin;
}
