import { createServer, type IncomingMessage } from "node:http";
import { createClient, type InValue } from "@libsql/client";

/** A Hrana value (libSQL's wire protocol, JSON encoding). */
type HranaValue =
	| { type: "null" }
	| { type: "integer"; value: string }
	| { type: "float"; value: number }
	| { type: "text"; value: string }
	| { type: "blob"; base64: string };

interface HranaStmt {
	sql: string;
	args?: HranaValue[];
	want_rows?: boolean;
}

type StreamRequest = { type: "execute"; stmt: HranaStmt } | { type: "close" } | { type: string };

export interface HranaServer {
	/** `http://127.0.0.1:<port>`: what `@libsql/client/web` connects to. */
	url: string;
	/** Statements executed, in order. */
	executed: string[];
	close(): Promise<void>;
}

/**
 * sqld's HTTP API (Hrana over HTTP, v2 JSON pipeline: execute and close) in front of a real
 * libSQL file. sqld cannot be installed here; this is the part of its documented protocol the
 * web client uses to open a database, so a worker in workerd can reach a real store.
 */
export async function startHranaServer(file: string): Promise<HranaServer> {
	const db = createClient({ url: `file:${file}`, intMode: "bigint" });
	const executed: string[] = [];
	const server = createServer(async (req, res) => {
		if (req.method === "GET" && req.url === "/v2") return void res.writeHead(200).end();
		if (req.method !== "POST" || req.url !== "/v2/pipeline") {
			return void res.writeHead(404).end();
		}
		const body = JSON.parse(await readBody(req)) as { requests: StreamRequest[] };
		const results = [];
		for (const request of body.requests) {
			if (request.type === "close") {
				results.push({ type: "ok", response: { type: "close" } });
			} else if (request.type === "execute" && "stmt" in request) {
				executed.push(request.stmt.sql);
				try {
					const rs = await db.execute({
						sql: request.stmt.sql,
						args: (request.stmt.args ?? []).map(fromHrana),
					});
					results.push({
						type: "ok",
						response: {
							type: "execute",
							result: {
								cols: rs.columns.map((name) => ({ name, decltype: null })),
								rows: rs.rows.map((row) => rs.columns.map((_, i) => toHrana(row[i]))),
								affected_row_count: rs.rowsAffected,
								last_insert_rowid: rs.lastInsertRowid?.toString() ?? null,
							},
						},
					});
				} catch (err) {
					results.push({ type: "error", error: { message: String(err), code: "SQLITE_ERROR" } });
				}
			} else {
				results.push({
					type: "error",
					error: { message: `unsupported request ${request.type}`, code: "PROTOCOL" },
				});
			}
		}
		const text = JSON.stringify({ baton: null, base_url: null, results });
		res.writeHead(200, { "content-type": "application/json" }).end(text);
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const address = server.address();
	const port = typeof address === "object" && address ? address.port : 0;
	return {
		url: `http://127.0.0.1:${port}`,
		executed,
		close: () =>
			new Promise<void>((resolve) => {
				db.close();
				server.close(() => resolve());
				server.closeAllConnections();
			}),
	};
}

function readBody(req: IncomingMessage): Promise<string> {
	return new Promise((resolve, reject) => {
		const chunks: Buffer[] = [];
		req.on("data", (c: Buffer) => chunks.push(c));
		req.on("end", () => resolve(Buffer.concat(chunks).toString()));
		req.on("error", reject);
	});
}

function fromHrana(value: HranaValue): InValue {
	switch (value.type) {
		case "null":
			return null;
		case "integer":
			return BigInt(value.value);
		case "float":
			return value.value;
		case "text":
			return value.value;
		case "blob":
			return Buffer.from(value.base64, "base64");
	}
}

function toHrana(value: unknown): HranaValue {
	if (value === null || value === undefined) return { type: "null" };
	if (typeof value === "bigint") return { type: "integer", value: value.toString() };
	if (typeof value === "number") return { type: "float", value };
	if (typeof value === "string") return { type: "text", value };
	if (value instanceof ArrayBuffer) {
		return { type: "blob", base64: Buffer.from(value).toString("base64") };
	}
	return { type: "text", value: String(value) };
}
