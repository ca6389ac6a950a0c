import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import type { TLSSocket } from "node:tls";
import { ORIGIN_BODY } from "./edge-peers";

export interface TlsInfo {
	protocol: string;
	cipher: string;
}

/**
 * One request through a peer before it is measured: it must answer 200 with the origin's
 * body (a peer answering 404 or 421 quickly would look fast), over TLS verified against the
 * tenant's CA for the tenant's name. Returns what TLS it negotiated.
 */
export function checkPeer(
	port: number,
	tls: boolean,
	hostname: string,
	ca: string[],
): Promise<TlsInfo | undefined> {
	return new Promise((resolve, reject) => {
		const options = {
			host: "127.0.0.1",
			port,
			path: "/",
			headers: { host: `${hostname}:${port}` },
			agent: false as const,
		};
		const onResponse = (res: IncomingMessage) => {
			let body = "";
			res.setEncoding("utf8");
			res.on("data", (chunk: string) => {
				body += chunk;
			});
			res.on("end", () => {
				if (res.statusCode !== 200 || body !== ORIGIN_BODY) {
					reject(new Error(`check on port ${port}: ${res.statusCode} ${JSON.stringify(body)}`));
					return;
				}
				const socket = res.socket as TLSSocket;
				resolve(
					tls
						? { protocol: socket.getProtocol() ?? "?", cipher: socket.getCipher()?.name ?? "?" }
						: undefined,
				);
			});
		};
		const req = tls
			? httpsRequest({ ...options, servername: hostname, ca }, onResponse)
			: httpRequest(options, onResponse);
		req.setTimeout(10_000, () => req.destroy(new Error(`check on port ${port}: timeout`)));
		req.on("error", reject);
		req.end();
	});
}
