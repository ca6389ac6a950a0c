/**
 * The floor for any Node TLS proxy: node:https in, a keep-alive node:http Agent out, bodies
 * piped, headers passed as they are; no routing, no header work. Measured next to the edge it
 * separates what Node itself costs from what Castellan adds. Started by edge.bench.ts as
 * `node --import tsx test/bench/edge-plain-proxy.ts <port> <origin port> <cert file> <key file>`,
 * like the edge runner (tsx costs at start-up only).
 */
import { readFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { createServer } from "node:https";

const [port, originPort, certFile, keyFile] = process.argv.slice(2);
if (!port || !originPort || !certFile || !keyFile) {
	throw new Error("usage: edge-plain-proxy.ts <port> <origin port> <cert file> <key file>");
}
// The same pool settings as the edge's InstanceAgents.
const agent = new Agent({ keepAlive: true, maxFreeSockets: 256, scheduling: "lifo" });
createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, (req, res) => {
	const upstream = request(
		{
			host: "127.0.0.1",
			port: Number(originPort),
			method: req.method,
			path: req.url,
			headers: req.headers,
			agent,
		},
		(response) => {
			res.writeHead(response.statusCode ?? 502, response.headers);
			response.pipe(res);
		},
	);
	upstream.on("error", () => res.destroy());
	req.pipe(upstream);
}).listen(Number(port), "127.0.0.1");
