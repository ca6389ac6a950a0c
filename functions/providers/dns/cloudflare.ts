import { z } from "zod";
import { type Clock, systemClock } from "../../runtime";
import type { ProviderFactory } from "../registry";
import { redactSecret, resolveSecretSetting, secretSettingSchema } from "../secret-setting";
import type {
	Capabilities,
	DnsCapabilities,
	DnsProvider,
	DnsRecordSet,
	DnsRecordType,
} from "../types";
import { DnsProviderError, describeNetworkFailure } from "./dns-provider-error";
import {
	ALL_RECORD_TYPES,
	assertRecordKey,
	encodeTxt,
	isInZone,
	normalizedRecordSet,
	servingZone,
	valueFromContent,
	zoneNameSchema,
	zonesToList,
} from "./record-set";

export const CLOUDFLARE_API_BASE = "https://api.cloudflare.com/client/v4";
/** Cloudflare's floor for a non-Enterprise zone; `ttl: 1` means "automatic", which we never send. */
const CLOUDFLARE_MIN_TTL = 60;
/** What Cloudflare's "automatic" TTL is in practice, reported for records someone set to 1. */
const AUTOMATIC_TTL = 300;
const DEFAULT_TIMEOUT_MS = 15_000;
const DEFAULT_MAX_RETRIES = 4;
const MAX_RETRY_WAIT_MS = 60_000;
const PROXIABLE: ReadonlySet<DnsRecordType> = new Set(["A", "AAAA", "CNAME"]);

/** Cloudflare error codes the provider acts on (see the API v4 DNS records documentation). */
const CODE = {
	authentication: 10000,
	invalidToken: 9109,
	noRoute: 7000,
	couldNotRoute: 7003,
	recordMissing: 81044,
	recordExists: 81057,
	identicalRecord: 81058,
} as const;

export const cloudflareSettingsSchema = z.strictObject({
	/** An API token with Zone.DNS:Edit on the zone; `{ env: "CLOUDFLARE_API_TOKEN" }` in a config file. */
	apiToken: secretSettingSchema,
	zoneId: z
		.string()
		.regex(/^[0-9a-f]{32}$/, "must be the 32-character hex zone id shown in the dashboard"),
	/** The zone's name: every record name must lie under it. */
	zone: zoneNameSchema,
	apiBase: z
		.url({ protocol: /^https?$/, error: "must be an http(s) URL" })
		.default(CLOUDFLARE_API_BASE),
	/** Whether A, AAAA and CNAME records go through Cloudflare's proxy (their TTL is then automatic). */
	proxied: z.boolean().default(false),
	timeoutMs: z.number().int().min(100).max(120_000).default(DEFAULT_TIMEOUT_MS),
});
export type CloudflareSettings = z.infer<typeof cloudflareSettingsSchema>;

export interface CloudflareDnsProviderOptions {
	apiToken: string;
	zoneId: string;
	zone: string;
	capabilities: Capabilities;
	apiBase?: string;
	proxied?: boolean;
	timeoutMs?: number;
	/** How many times a 429 is retried (after waiting `Retry-After`) before the call gives up. */
	maxRetries?: number;
	/** Records per page when listing (Cloudflare's default is 100). */
	pageSize?: number;
	/** Waits between retries; tests pass a recorder so no real time passes. */
	sleep?: (ms: number) => Promise<void>;
	clock?: Clock;
}

interface CfRecord {
	id: string;
	name: string;
	type: string;
	content: string;
	ttl: number;
	proxied?: boolean;
}

interface CfError {
	code: number;
	message: string;
}

interface CfEnvelope {
	success: boolean;
	errors?: CfError[];
	result?: unknown;
	result_info?: { page: number; per_page: number; total_pages?: number; total_count?: number };
}

type CfAnswer = { ok: true; body: CfEnvelope } | { ok: false; status: number; errors: CfError[] };

/**
 * Cloudflare's API v4 DNS records. Cloudflare keeps one record per value, so a record set is
 * the records of one (name, type): upsert reconciles them (keep matching values, rewrite or
 * create the rest, delete extras), sequentially, to stay gentle with the rate limit.
 */
export class CloudflareDnsProvider implements DnsProvider {
	readonly capabilities: DnsCapabilities;
	readonly #apiToken: string;
	readonly #zoneId: string;
	readonly #zone: string;

	get zones(): readonly string[] {
		return [this.#zone];
	}
	readonly #apiBase: string;
	readonly #proxied: boolean;
	readonly #timeoutMs: number;
	readonly #maxRetries: number;
	readonly #pageSize: number;
	readonly #sleep: (ms: number) => Promise<void>;
	readonly #clock: Clock;

	constructor(options: CloudflareDnsProviderOptions) {
		this.#apiToken = options.apiToken;
		this.#zoneId = options.zoneId;
		this.#zone = options.zone;
		this.#apiBase = (options.apiBase ?? CLOUDFLARE_API_BASE).replace(/\/+$/, "");
		this.#proxied = options.proxied ?? false;
		this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
		this.#maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
		this.#pageSize = options.pageSize ?? 100;
		this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
		this.#clock = options.clock ?? systemClock;
		this.capabilities = {
			...options.capabilities,
			recordTypes: ALL_RECORD_TYPES,
			wildcard: true,
			minTtl: CLOUDFLARE_MIN_TTL,
		};
	}

	async upsert(record: DnsRecordSet): Promise<void> {
		const set = normalizedRecordSet(record, this.capabilities);
		servingZone(set.name, [this.#zone]);
		const want = { ttl: this.#ttlFor(set.type, set.ttl), proxied: this.#proxiedFor(set.type) };

		const keep = new Map<string, CfRecord>();
		const spare: CfRecord[] = [];
		for (const existing of await this.#find(set.name, set.type)) {
			const value = valueFromContent(set.type, existing.content);
			if (set.values.includes(value) && !keep.has(value)) keep.set(value, existing);
			else spare.push(existing);
		}
		for (const existing of keep.values()) {
			if (!matches(existing, want)) await this.#patch(existing.id, want);
		}
		for (const value of set.values.filter((v) => !keep.has(v))) {
			const content = toContent(set.type, value);
			// Rewriting a spare record instead of create-then-delete never leaves the name empty.
			const reuse = spare.shift();
			const answer = reuse
				? await this.#send("PATCH", `/dns_records/${reuse.id}`, { content, ...want })
				: await this.#send("POST", "/dns_records", {
						type: set.type,
						name: set.name,
						content,
						...want,
					});
			if (answer.ok) continue;
			if (!isDuplicate(answer.errors)) throw this.#failure(answer, `${set.type} ${set.name}`);
			// Someone wrote the same value meanwhile: fine if it is there now, with our TTL.
			if (reuse) spare.push(reuse);
			await this.#confirmWritten(set.name, set.type, value, want);
		}
		for (const extra of spare) await this.#delete(extra.id);
	}

	async remove(name: string, type: DnsRecordType): Promise<void> {
		assertRecordKey(name, type, this.capabilities.wildcard);
		servingZone(name, [this.#zone]);
		for (const existing of await this.#find(name, type)) await this.#delete(existing.id);
	}

	async list(zone?: string): Promise<DnsRecordSet[]> {
		if (zonesToList(zone, [this.#zone]).length === 0) return [];
		const sets = new Map<string, DnsRecordSet>();
		for (const record of await this.#records({})) {
			const type = record.type as DnsRecordType;
			const name = record.name.toLowerCase();
			if (!ALL_RECORD_TYPES.includes(type)) continue;
			if (zone !== undefined && !isInZone(name, zone)) continue;
			const ttl = record.ttl === 1 ? AUTOMATIC_TTL : record.ttl;
			const key = `${type} ${name}`;
			const set = sets.get(key);
			const value = valueFromContent(type, record.content);
			// Resolvers cache an RRset for its smallest TTL, so that is the set's TTL.
			if (set) {
				if (!set.values.includes(value)) set.values.push(value);
				set.ttl = Math.min(set.ttl, ttl);
			} else sets.set(key, { name, type, ttl, values: [value] });
		}
		return [...sets.values()];
	}

	#ttlFor(type: DnsRecordType, ttl: number): number {
		return this.#proxiedFor(type) ? 1 : ttl;
	}

	#proxiedFor(type: DnsRecordType): boolean | undefined {
		return PROXIABLE.has(type) ? this.#proxied : undefined;
	}

	async #find(name: string, type: DnsRecordType): Promise<CfRecord[]> {
		return this.#records({ name, type });
	}

	/** Every page of `GET /zones/:id/dns_records` for the filters. */
	async #records(filters: Record<string, string>): Promise<CfRecord[]> {
		const out: CfRecord[] = [];
		for (let page = 1; ; page++) {
			const query = new URLSearchParams({
				...filters,
				page: String(page),
				per_page: String(this.#pageSize),
			});
			const answer = await this.#send("GET", `/dns_records?${query}`);
			if (!answer.ok) throw this.#failure(answer, `listing zone ${this.#zone}`);
			const result = answer.body.result;
			if (!Array.isArray(result)) {
				throw new DnsProviderError("unavailable", "Cloudflare answered a list without records");
			}
			out.push(...(result as CfRecord[]));
			const totalPages = answer.body.result_info?.total_pages ?? 1;
			if (page >= totalPages || result.length === 0) return out;
		}
	}

	async #patch(id: string, body: Record<string, unknown>): Promise<void> {
		const answer = await this.#send("PATCH", `/dns_records/${id}`, body);
		if (!answer.ok) throw this.#failure(answer, `record ${id}`);
	}

	async #delete(id: string): Promise<void> {
		const answer = await this.#send("DELETE", `/dns_records/${id}`);
		// Already gone (a concurrent remove): what we wanted.
		if (!answer.ok && !answer.errors.some((e) => e.code === CODE.recordMissing)) {
			throw this.#failure(answer, `record ${id}`);
		}
	}

	async #confirmWritten(
		name: string,
		type: DnsRecordType,
		value: string,
		want: { ttl: number; proxied: boolean | undefined },
	): Promise<void> {
		const found = (await this.#find(name, type)).find(
			(r) => valueFromContent(type, r.content) === value,
		);
		if (!found) {
			throw new DnsProviderError(
				"rejected",
				`Cloudflare reported ${type} ${name} ${JSON.stringify(value)} as already existing but does not list it`,
			);
		}
		if (!matches(found, want)) await this.#patch(found.id, want);
	}

	/** One API call, retrying 429s after `Retry-After` (bounded); network failures are retryable. */
	async #send(method: string, path: string, body?: unknown): Promise<CfAnswer> {
		const url = `${this.#apiBase}/zones/${encodeURIComponent(this.#zoneId)}${path}`;
		for (let attempt = 0; ; attempt++) {
			let response: Response;
			try {
				response = await fetch(url, {
					method,
					headers: {
						Authorization: `Bearer ${this.#apiToken}`,
						Accept: "application/json",
						...(body === undefined ? {} : { "Content-Type": "application/json" }),
					},
					body: body === undefined ? undefined : JSON.stringify(body),
					signal: AbortSignal.timeout(this.#timeoutMs),
				});
			} catch (err) {
				throw new DnsProviderError(
					"unavailable",
					`Cloudflare API at ${this.#apiBase} is unavailable: ${describeNetworkFailure(err, this.#timeoutMs)}`,
					{ cause: err },
				);
			}
			const envelope = await readEnvelope(response);
			if (response.status === 429) {
				const wait = this.#retryWait(response.headers.get("retry-after"), attempt);
				if (attempt >= this.#maxRetries || wait > MAX_RETRY_WAIT_MS) {
					throw new DnsProviderError(
						"rate_limited",
						`Cloudflare is rate-limiting this token (HTTP 429) after ${attempt} retries; try again in ${Math.ceil(wait / 1000)} s`,
					);
				}
				await this.#sleep(wait);
				continue;
			}
			if (response.ok && envelope?.success !== false) {
				return { ok: true, body: envelope ?? { success: true } };
			}
			return { ok: false, status: response.status, errors: envelope?.errors ?? [] };
		}
	}

	/** `Retry-After` in seconds or as an HTTP date; exponential from 1 s when absent. */
	#retryWait(header: string | null, attempt: number): number {
		if (header !== null && /^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
		const date = header === null ? Number.NaN : Date.parse(header);
		if (!Number.isNaN(date)) return Math.max(0, date - this.#clock.now().getTime());
		return 1000 * 2 ** attempt;
	}

	#failure(answer: { status: number; errors: CfError[] }, what: string): DnsProviderError {
		const { status, errors } = answer;
		const codes = new Set(errors.map((e) => e.code));
		const detail = errors.length
			? `: ${redactSecret(errors.map((e) => `${e.code} ${e.message}`).join("; "), this.#apiToken)}`
			: "";
		if (
			status === 401 ||
			status === 403 ||
			codes.has(CODE.authentication) ||
			codes.has(CODE.invalidToken)
		) {
			return new DnsProviderError(
				"auth_failed",
				`Cloudflare refused the API token: authentication failed (HTTP ${status}${detail})`,
			);
		}
		if (codes.has(CODE.couldNotRoute) || codes.has(CODE.noRoute)) {
			return new DnsProviderError(
				"zone_not_served",
				`zone ${this.#zone} is not served by this Cloudflare account (zone id ${this.#zoneId}${detail})`,
			);
		}
		if (status >= 500) {
			return new DnsProviderError(
				"unavailable",
				`Cloudflare failed with HTTP ${status} on ${what}${detail}`,
			);
		}
		return new DnsProviderError("rejected", `Cloudflare refused ${what} (HTTP ${status})${detail}`);
	}
}

export const cloudflareDnsFactory: ProviderFactory<"dns", CloudflareSettings> = {
	kind: "dns",
	type: "cloudflare",
	settingsSchema: cloudflareSettingsSchema,
	endpointSettings: ["apiBase"],
	create: ({ settings, capabilities, deps }) =>
		new CloudflareDnsProvider({
			apiToken: resolveSecretSetting(settings.apiToken, deps.env, "apiToken"),
			zoneId: settings.zoneId,
			zone: settings.zone,
			apiBase: settings.apiBase,
			proxied: settings.proxied,
			timeoutMs: settings.timeoutMs,
			capabilities,
			clock: deps.clock,
		}),
};

function matches(record: CfRecord, want: { ttl: number; proxied: boolean | undefined }): boolean {
	return record.ttl === want.ttl && (want.proxied === undefined || record.proxied === want.proxied);
}

function isDuplicate(errors: CfError[]): boolean {
	return errors.some((e) => e.code === CODE.identicalRecord || e.code === CODE.recordExists);
}

/** Cloudflare asks for TXT content as quoted character-strings (RFC 1035), each up to 255 octets. */
function toContent(type: DnsRecordType, value: string): string {
	return type === "TXT" ? encodeTxt(value) : value;
}

async function readEnvelope(response: Response): Promise<CfEnvelope | undefined> {
	const text = await response.text().catch(() => "");
	if (text === "") return undefined;
	try {
		return JSON.parse(text) as CfEnvelope;
	} catch {
		// A proxy's HTML error page: the status decides what it means.
		return undefined;
	}
}
