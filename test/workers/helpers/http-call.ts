import { type IncomingHttpHeaders, request } from "node:http";
import type { Readable } from "node:stream";

export interface CallResult {
	status: number;
	headers: IncomingHttpHeaders;
	body: Buffer;
	text: string;
}

export interface Call {
	/** The Host header: what the worker sees as the request URL's authority. */
	host: string;
	method?: string;
	path?: string;
	headers?: Record<string, string>;
	body?: string | Buffer | Readable;
}

/**
 * One HTTP/1.1 request to workerd on its own connection. Plain node:http rather than fetch, so
 * the test controls Host, Connection and the other headers fetch refuses to set.
 */
export function call(base: URL, options: Call): Promise<CallResult> {
	return new Promise((resolve, reject) => {
		const req = request(
			{
				host: base.hostname,
				port: base.port,
				method: options.method ?? "GET",
				path: options.path ?? "/",
				headers: { host: options.host, ...options.headers },
				agent: false,
			},
			(res) => {
				const chunks: Buffer[] = [];
				res.on("data", (chunk: Buffer) => chunks.push(chunk));
				res.on("error", reject);
				res.on("end", () => {
					const body = Buffer.concat(chunks);
					resolve({
						status: res.statusCode ?? 0,
						headers: res.headers,
						body,
						text: body.toString(),
					});
				});
			},
		);
		req.on("error", reject);
		const body = options.body;
		if (body === undefined) req.end();
		else if (typeof body === "string" || Buffer.isBuffer(body)) req.end(body);
		else body.pipe(req);
	});
}

/** The shared error shape, parsed; fails the test when the body is not that shape. */
export function errorOf(result: CallResult): { code: string; message: string; requestId: string } {
	const parsed = JSON.parse(result.text) as {
		error?: { code: string; message: string; requestId: string };
	};
	if (!parsed.error) throw new Error(`not an error body: ${result.text}`);
	return parsed.error;
}
