/**
 * A stand-in for Cloudflare's API v4 DNS records endpoints, on node:http at 127.0.0.1, used only
 * because the real API is unreachable from the test machines. It follows the documented shapes
 * and errors, so the provider is tested against what Cloudflare says it does:
 *
 * - Envelope `{ success, errors: [{ code, message }], messages, result }`, list pages with
 *   `result_info { page, per_page, count, total_count, total_pages }`; `per_page` 5..5000000,
 *   default 100 (developers.cloudflare.com/api/resources/dns/subresources/records/methods/list).
 * - `GET|POST /zones/:zone_id/dns_records` (filters `name` exact, `type`, `content`),
 *   `GET|PATCH|PUT|DELETE /zones/:zone_id/dns_records/:id` (methods create/edit/update/delete).
 * - `Authorization: Bearer <token>`: a wrong token answers 403 `10000 Authentication error`; a
 *   missing or malformed header 400 `6003 Invalid request headers` (fundamentals/api/troubleshooting).
 * - An unknown zone id answers 404, a malformed one 400, both `7003 Could not route to
 *   /zones/<id>/dns_records, perhaps your object identifier is invalid?` and `7000 No route for
 *   that URI`; an unknown record id 404 `81044 Record does not exist.`
 * - An identical record (type, name, content) answers 400 `81058 An identical record already
 *   exists.`; a CNAME beside other records at a name 400 `81053`/`81054`
 *   (dns/manage-dns-records/troubleshooting/records-with-same-name).
 * - TTL is 1 ("automatic") or 60..86400 (lower floors are Enterprise-only); proxied records get
 *   TTL 1; only A, AAAA and CNAME may be proxied. Validation codes (9005, 9006, 9021, 9004) are
 *   the ones Cloudflare answers for those cases, to the best of public reports.
 * - Rate limiting: 429 with `Retry-After` in seconds (fundamentals/api/reference/limits); here only
 *   when a test asks for it with `rateLimitNext`.
 * TXT content is stored as sent; names are stored fully qualified, in lower case.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeDnsRecord {
	id: string;
	zone_id: string;
	zone_name: string;
	name: string;
	type: string;
	content: string;
	proxiable: boolean;
	proxied: boolean;
	ttl: number;
	comment: string | null;
	tags: string[];
	created_on: string;
	modified_on: string;
}

export interface FakeRequest {
	method: string;
	/** Path and query below the API base, e.g. `/zones/<id>/dns_records?name=a.example.test`. */
	path: string;
	body: unknown;
	status: number;
}

export interface CloudflareApiFakeOptions {
	/** The one token the fake accepts; random by default. */
	token?: string;
	/** Zone names to create (their ids are random 32-hex strings, as Cloudflare's). */
	zones?: string[];
}

export interface CloudflareApiFake {
	/** The `apiBase` setting: `http://127.0.0.1:<port>/client/v4`. */
	apiBase: string;
	token: string;
	/** The id of a zone the fake serves. */
	zoneId(zone: string): string;
	/** Adds a zone and returns its id. */
	addZone(zone: string): string;
	/** Records as they are stored, as Cloudflare would return them. */
	records(zoneId: string): FakeDnsRecord[];
	/** Stores a record directly, as if made in the dashboard (no validation). */
	seed(
		zoneId: string,
		record: { name: string; type: string; content: string; ttl?: number },
	): FakeDnsRecord;
	/** The next `count` requests answer 429 with `Retry-After: <retryAfterSeconds>` (omitted when null). */
	rateLimitNext(count: number, retryAfterSeconds?: number | null): void;
	/** Runs once, just before the next request matching `method` is handled (to stage races). */
	beforeNext(method: string, hook: () => void): void;
	/** Every request handled, in order. */
	requests: FakeRequest[];
	close(): Promise<void>;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const HOSTNAME =
	/^(\*\.)?([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?\.)*[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?$/;
const PROXIABLE = new Set(["A", "AAAA", "CNAME"]);
const ADDRESS_TYPES = new Set(["A", "AAAA", "CNAME"]);

interface CfError {
	code: number;
	message: string;
}

class ApiError extends Error {
	constructor(
		readonly status: number,
		readonly errors: CfError[],
	) {
		super(errors.map((e) => e.message).join("; "));
	}
}

export async function startCloudflareApiFake(
	options: CloudflareApiFakeOptions = {},
): Promise<CloudflareApiFake> {
	const token = options.token ?? randomHex(20);
	const zones = new Map<string, { id: string; name: string; records: FakeDnsRecord[] }>();
	const requests: FakeRequest[] = [];
	let rateLimited = 0;
	let retryAfter: number | null = 1;
	const hooks: Array<{ method: string; run: () => void }> = [];

	const addZone = (name: string) => {
		const id = randomHex(16);
		zones.set(id, { id, name, records: [] });
		return id;
	};
	for (const zone of options.zones ?? []) addZone(zone);

	const server = createServer((req, res) => {
		void handle(req, res);
	});

	async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
		const method = req.method ?? "GET";
		const url = new URL(req.url ?? "/", "http://fake");
		const path = url.pathname.replace(/^\/client\/v4/, "") + url.search;
		const raw = await readBody(req);
		const body = raw === "" ? undefined : lenientJson(raw);
		let status = 200;
		try {
			if (rateLimited > 0) {
				rateLimited--;
				status = 429;
				if (retryAfter !== null) res.setHeader("Retry-After", String(retryAfter));
				throw new ApiError(429, [
					{ code: 971, message: "Please wait and consider throttling your request speed" },
				]);
			}
			authenticate(req.headers.authorization);
			const hook = hooks.findIndex((h) => h.method === method);
			if (hook >= 0) hooks.splice(hook, 1)[0]?.run();
			if (raw !== "") parseJson(raw);
			const result = route(method, url, body);
			send(res, 200, { success: true, errors: [], messages: [], ...result });
		} catch (err) {
			const apiError =
				err instanceof ApiError ? err : new ApiError(500, [{ code: 10001, message: String(err) }]);
			status = apiError.status;
			send(res, status, { success: false, errors: apiError.errors, messages: [], result: null });
		}
		requests.push({ method, path, body, status });
	}

	function authenticate(header: string | undefined): void {
		const match = /^Bearer (\S+)$/.exec(header ?? "");
		if (!match) {
			throw new ApiError(400, [
				{ code: 6003, message: "Invalid request headers" },
				{ code: 6111, message: "Invalid format for Authorization header" },
			]);
		}
		if (match[1] !== token)
			throw new ApiError(403, [{ code: 10000, message: "Authentication error" }]);
	}

	function route(
		method: string,
		url: URL,
		body: unknown,
	): { result: unknown; result_info?: Record<string, number> } {
		const parts = url.pathname.replace(/^\/client\/v4\/?/, "").split("/");
		if (parts[0] !== "zones" || parts[2] !== "dns_records" || parts.length > 4) {
			throw new ApiError(400, [{ code: 7000, message: "No route for that URI" }]);
		}
		const zoneId = parts[1] ?? "";
		const zone = zones.get(zoneId);
		if (!zone) {
			throw new ApiError(/^[0-9a-f]{32}$/.test(zoneId) ? 404 : 400, [
				{
					code: 7003,
					message: `Could not route to /zones/${zoneId}/dns_records, perhaps your object identifier is invalid?`,
				},
				{ code: 7000, message: "No route for that URI" },
			]);
		}
		const recordId = parts[3];
		if (recordId === undefined) {
			if (method === "GET") return list(zone, url.searchParams);
			if (method === "POST") return { result: create(zone, asObject(body)) };
		} else {
			const index = zone.records.findIndex((r) => r.id === recordId);
			const record = zone.records[index];
			if (!record) throw new ApiError(404, [{ code: 81044, message: "Record does not exist." }]);
			if (method === "GET") return { result: record };
			if (method === "DELETE") {
				zone.records.splice(index, 1);
				return { result: { id: recordId } };
			}
			if (method === "PATCH")
				return { result: update(zone, record, { ...record, ...asObject(body) }) };
			if (method === "PUT") return { result: update(zone, record, asObject(body)) };
		}
		throw new ApiError(405, [
			{ code: 10405, message: `Method ${method} not allowed for this route` },
		]);
	}

	function list(
		zone: { records: FakeDnsRecord[]; name: string },
		query: URLSearchParams,
	): { result: FakeDnsRecord[]; result_info: Record<string, number> } {
		const name = query.get("name") ?? query.get("name.exact");
		const type = query.get("type");
		const content = query.get("content");
		const matching = zone.records.filter(
			(r) =>
				(name === null || r.name === fqdn(name, zone.name)) &&
				(type === null || r.type === type) &&
				(content === null || r.content === content),
		);
		const perPage = clamp(Number(query.get("per_page") ?? 100), 5, 5_000_000);
		const page = Math.max(1, Math.floor(Number(query.get("page") ?? 1)) || 1);
		const result = matching.slice((page - 1) * perPage, page * perPage);
		return {
			result,
			result_info: {
				page,
				per_page: perPage,
				count: result.length,
				total_count: matching.length,
				total_pages: Math.max(1, Math.ceil(matching.length / perPage)),
			},
		};
	}

	function create(
		zone: { id: string; name: string; records: FakeDnsRecord[] },
		input: Record<string, unknown>,
	): FakeDnsRecord {
		const now = new Date().toISOString();
		const record = validated(zone, {
			id: randomHex(16),
			zone_id: zone.id,
			zone_name: zone.name,
			created_on: now,
			modified_on: now,
			comment: null,
			tags: [],
			...input,
		});
		zone.records.push(record);
		return record;
	}

	function update(
		zone: { id: string; name: string; records: FakeDnsRecord[] },
		existing: FakeDnsRecord,
		input: Record<string, unknown>,
	): FakeDnsRecord {
		const next = validated(
			zone,
			{
				...input,
				id: existing.id,
				zone_id: zone.id,
				zone_name: zone.name,
				created_on: existing.created_on,
				modified_on: new Date().toISOString(),
				comment: existing.comment,
				tags: existing.tags,
			},
			existing.id,
		);
		Object.assign(existing, next);
		return existing;
	}

	/** The checks Cloudflare makes on create and update, then the stored shape. */
	function validated(
		zone: { name: string; records: FakeDnsRecord[] },
		input: Record<string, unknown>,
		selfId?: string,
	): FakeDnsRecord {
		const type = input["type"];
		const rawName = input["name"];
		const content = input["content"];
		if (typeof type !== "string" || typeof rawName !== "string" || typeof content !== "string") {
			throw new ApiError(400, [
				{ code: 9000, message: "DNS name, type and content are required." },
			]);
		}
		const name = fqdn(rawName, zone.name);
		if (!HOSTNAME.test(name) || !(name === zone.name || name.endsWith(`.${zone.name}`))) {
			throw new ApiError(400, [{ code: 9005, message: "DNS name is invalid." }]);
		}
		if (type === "A" && !IPV4.test(content)) {
			throw new ApiError(400, [
				{ code: 9005, message: "Content for A record must be a valid IPv4 address." },
			]);
		}
		if (type === "AAAA" && !isIpv6(content)) {
			throw new ApiError(400, [
				{ code: 9006, message: "Content for AAAA record must be a valid IPv6 address." },
			]);
		}
		if (type === "CNAME" && !HOSTNAME.test(content.toLowerCase().replace(/\.$/, ""))) {
			throw new ApiError(400, [{ code: 9007, message: "Content for CNAME record is invalid." }]);
		}
		const proxied = input["proxied"] === true;
		if (proxied && !PROXIABLE.has(type)) {
			throw new ApiError(400, [{ code: 9004, message: "This record type cannot be proxied." }]);
		}
		const ttl = input["ttl"] === undefined ? 1 : input["ttl"];
		if (
			typeof ttl !== "number" ||
			!(ttl === 1 || (Number.isInteger(ttl) && ttl >= 60 && ttl <= 86400))
		) {
			throw new ApiError(400, [
				{
					code: 9021,
					message: "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic.",
				},
			]);
		}
		const others = zone.records.filter((r) => r.id !== selfId && r.name === name);
		if (others.some((r) => r.type === type && r.content === content)) {
			throw new ApiError(400, [{ code: 81058, message: "An identical record already exists." }]);
		}
		// Cloudflare's rule, as documented: a CNAME cannot share a name with an A, AAAA or CNAME.
		if (type === "CNAME" && others.some((r) => ADDRESS_TYPES.has(r.type))) {
			throw new ApiError(400, [
				{ code: 81053, message: "An A, AAAA, or CNAME record with that host already exists." },
			]);
		}
		if (ADDRESS_TYPES.has(type) && others.some((r) => r.type === "CNAME")) {
			throw new ApiError(400, [
				{ code: 81054, message: "A CNAME record with that host already exists." },
			]);
		}
		return {
			...(input as unknown as FakeDnsRecord),
			name,
			type,
			content,
			proxiable: PROXIABLE.has(type),
			proxied,
			ttl: proxied ? 1 : ttl,
		};
	}

	await new Promise<void>((resolve, reject) => {
		server.once("error", reject);
		server.listen(0, "127.0.0.1", resolve);
	});
	const { port } = server.address() as AddressInfo;

	return {
		apiBase: `http://127.0.0.1:${port}/client/v4`,
		token,
		zoneId(zone) {
			const found = [...zones.values()].find((z) => z.name === zone);
			if (!found) throw new Error(`the fake serves no zone ${zone}`);
			return found.id;
		},
		addZone,
		records(zoneId) {
			return structuredClone(zones.get(zoneId)?.records ?? []);
		},
		seed(zoneId, input) {
			const zone = zones.get(zoneId);
			if (!zone) throw new Error(`the fake serves no zone id ${zoneId}`);
			const now = new Date().toISOString();
			const record: FakeDnsRecord = {
				id: randomHex(16),
				zone_id: zone.id,
				zone_name: zone.name,
				name: fqdn(input.name, zone.name),
				type: input.type,
				content: input.content,
				proxiable: PROXIABLE.has(input.type),
				proxied: false,
				ttl: input.ttl ?? 1,
				comment: null,
				tags: [],
				created_on: now,
				modified_on: now,
			};
			zone.records.push(record);
			return structuredClone(record);
		},
		rateLimitNext(count, seconds = 1) {
			rateLimited = count;
			retryAfter = seconds;
		},
		beforeNext(method, run) {
			hooks.push({ method, run });
		},
		requests,
		close: () =>
			new Promise<void>((resolve, reject) => {
				server.close((err) => (err ? reject(err) : resolve()));
				server.closeAllConnections();
			}),
	};
}

/** Cloudflare takes `@`, a name relative to the zone, or a fully qualified one. */
function fqdn(name: string, zone: string): string {
	const lower = name.toLowerCase().replace(/\.$/, "");
	if (lower === "@") return zone;
	return lower === zone || lower.endsWith(`.${zone}`) ? lower : `${lower}.${zone}`;
}

function isIpv6(value: string): boolean {
	if (!value.includes(":")) return false;
	try {
		new URL(`http://[${value}]/`);
		return true;
	} catch {
		return false;
	}
}

function clamp(value: number, min: number, max: number): number {
	return Number.isFinite(value) ? Math.min(max, Math.max(min, Math.floor(value))) : 100;
}

function asObject(body: unknown): Record<string, unknown> {
	if (typeof body !== "object" || body === null || Array.isArray(body)) {
		throw new ApiError(400, [{ code: 9207, message: "Request body is invalid." }]);
	}
	return body as Record<string, unknown>;
}

function lenientJson(raw: string): unknown {
	try {
		return JSON.parse(raw);
	} catch {
		return raw;
	}
}

function parseJson(raw: string): unknown {
	try {
		return JSON.parse(raw);
	} catch {
		throw new ApiError(400, [{ code: 9207, message: "Request body is invalid." }]);
	}
}

async function readBody(req: IncomingMessage): Promise<string> {
	const chunks: Buffer[] = [];
	for await (const chunk of req) chunks.push(chunk as Buffer);
	return Buffer.concat(chunks).toString("utf8");
}

function send(res: ServerResponse, status: number, body: unknown): void {
	const text = JSON.stringify(body);
	res.writeHead(status, {
		"Content-Type": "application/json",
		"Content-Length": Buffer.byteLength(text),
	});
	res.end(text);
}

function randomHex(bytes: number): string {
	return Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString("hex");
}
