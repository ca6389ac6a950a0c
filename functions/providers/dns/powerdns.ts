import { z } from "zod";
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

const DEFAULT_TIMEOUT_MS = 10_000;

export const powerDnsSettingsSchema = z.strictObject({
	/** Base URL of the PowerDNS webserver, e.g. `http://127.0.0.1:8081` (no `/api/v1`). */
	apiUrl: z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }),
	serverId: z
		.string()
		.regex(/^[A-Za-z0-9._-]+$/, "must be a PowerDNS server id such as localhost")
		.default("localhost"),
	/** The `X-API-Key`; `{ env: "PDNS_API_KEY" }` in a config file. */
	apiKey: secretSettingSchema,
	/** Zones (lower case, no trailing dot) this provider writes to; each must exist on the server. */
	zones: z.array(zoneNameSchema).min(1, "at least one zone is required"),
	/** The TTL callers should use when they have no reason to pick one (capabilities.defaultTtl). */
	defaultTtl: z.number().int().min(1).max(2_147_483_647).optional(),
	/** How long one API request may take before it counts as the server being unavailable. */
	timeoutMs: z.number().int().min(100).max(120_000).default(DEFAULT_TIMEOUT_MS),
});
export type PowerDnsSettings = z.infer<typeof powerDnsSettingsSchema>;

export interface PowerDnsProviderOptions {
	apiUrl: string;
	serverId?: string;
	apiKey: string;
	zones: readonly string[];
	capabilities: Capabilities;
	defaultTtl?: number;
	timeoutMs?: number;
}

interface PdnsRrset {
	name: string;
	type: string;
	ttl: number;
	records: Array<{ content: string; disabled?: boolean }>;
}

/**
 * The PowerDNS Authoritative HTTP API (v1): one `PATCH` per change, REPLACE or DELETE of a whole
 * RRset, so every upsert is atomic and idempotent on the server. The provider manages the A,
 * AAAA, CNAME and TXT RRsets of its zones; SOA, NS and other types are the operator's.
 */
export class PowerDnsProvider implements DnsProvider {
	readonly capabilities: DnsCapabilities;
	readonly #apiUrl: string;
	readonly #serverId: string;
	readonly #apiKey: string;
	readonly #zones: readonly string[];

	get zones(): readonly string[] {
		return this.#zones;
	}
	readonly #timeoutMs: number;

	constructor(options: PowerDnsProviderOptions) {
		this.#apiUrl = options.apiUrl.replace(/\/+$/, "");
		this.#serverId = options.serverId ?? "localhost";
		this.#apiKey = options.apiKey;
		this.#zones = [...options.zones];
		this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
		// PowerDNS serves a TTL of 0, but then every resolver asks it on every query: 1 s is the floor.
		this.capabilities = {
			...options.capabilities,
			recordTypes: ALL_RECORD_TYPES,
			wildcard: true,
			minTtl: 1,
			...(options.defaultTtl === undefined ? {} : { defaultTtl: options.defaultTtl }),
		};
	}

	async upsert(record: DnsRecordSet): Promise<void> {
		const set = normalizedRecordSet(record, this.capabilities);
		const zone = servingZone(set.name, this.#zones);
		await this.#patch(zone, {
			name: `${set.name}.`,
			type: set.type,
			ttl: set.ttl,
			changetype: "REPLACE",
			records: set.values.map((v) => ({ content: toContent(set.type, v), disabled: false })),
		});
	}

	async remove(name: string, type: DnsRecordType): Promise<void> {
		assertRecordKey(name, type, this.capabilities.wildcard);
		const zone = servingZone(name, this.#zones);
		// Deleting an RRset that does not exist is a no-op for PowerDNS (204).
		await this.#patch(zone, { name: `${name}.`, type, changetype: "DELETE" });
	}

	async list(zone?: string): Promise<DnsRecordSet[]> {
		const out: DnsRecordSet[] = [];
		for (const served of zonesToList(zone, this.#zones)) {
			const body = (await this.#request("GET", served)) as { rrsets?: PdnsRrset[] } | undefined;
			for (const rrset of body?.rrsets ?? []) {
				const set = fromRrset(rrset);
				if (set && (zone === undefined || isInZone(set.name, zone))) out.push(set);
			}
		}
		return out;
	}

	async #patch(zone: string, rrset: Record<string, unknown>): Promise<void> {
		await this.#request("PATCH", zone, { rrsets: [rrset] });
	}

	async #request(method: "GET" | "PATCH", zone: string, body?: unknown): Promise<unknown> {
		const url = `${this.#apiUrl}/api/v1/servers/${encodeURIComponent(this.#serverId)}/zones/${encodeURIComponent(`${zone}.`)}`;
		let response: Response;
		try {
			response = await fetch(url, {
				method,
				headers: {
					"X-API-Key": this.#apiKey,
					Accept: "application/json",
					...(body === undefined ? {} : { "Content-Type": "application/json" }),
				},
				body: body === undefined ? undefined : JSON.stringify(body),
				signal: AbortSignal.timeout(this.#timeoutMs),
			});
		} catch (err) {
			throw new DnsProviderError(
				"unavailable",
				`PowerDNS at ${this.#apiUrl} is unavailable: ${describeNetworkFailure(err, this.#timeoutMs)}`,
				{ cause: err },
			);
		}
		const text = await response.text().catch(() => "");
		if (response.ok) return text === "" ? undefined : parseJson(text);
		throw this.#failure(response.status, zone, serverMessage(text, this.#apiKey));
	}

	#failure(status: number, zone: string, message: string): DnsProviderError {
		const detail = message ? `: ${message}` : "";
		if (status === 401 || status === 403) {
			return new DnsProviderError(
				"auth_failed",
				`PowerDNS at ${this.#apiUrl} refused the API key: authentication failed (HTTP ${status})`,
			);
		}
		// 404 for a zone the server does not have; some versions answer 422 "Could not find domain".
		if (status === 404 || (status === 422 && /could not find domain/i.test(message))) {
			return new DnsProviderError(
				"zone_not_served",
				`zone ${zone} is not served by this PowerDNS server (${this.#apiUrl}, server "${this.#serverId}")`,
			);
		}
		if (status === 429 || status >= 500) {
			return new DnsProviderError(
				"unavailable",
				`PowerDNS at ${this.#apiUrl} failed with HTTP ${status}${detail}`,
			);
		}
		return new DnsProviderError(
			"rejected",
			`PowerDNS refused the change in zone ${zone} (HTTP ${status})${detail}`,
		);
	}
}

export const powerDnsFactory: ProviderFactory<"dns", PowerDnsSettings> = {
	kind: "dns",
	type: "powerdns",
	settingsSchema: powerDnsSettingsSchema,
	endpointSettings: ["apiUrl"],
	create: ({ settings, capabilities, deps }) =>
		new PowerDnsProvider({
			apiUrl: settings.apiUrl,
			serverId: settings.serverId,
			apiKey: resolveSecretSetting(settings.apiKey, deps.env, "apiKey"),
			zones: settings.zones,
			capabilities,
			defaultTtl: settings.defaultTtl,
			timeoutMs: settings.timeoutMs,
		}),
};

/** PowerDNS wants zone-file presentation: absolute CNAME targets, quoted TXT strings. */
function toContent(type: DnsRecordType, value: string): string {
	switch (type) {
		case "CNAME":
			return `${value}.`;
		case "TXT":
			return encodeTxt(value);
		default:
			return value;
	}
}

function fromRrset(rrset: PdnsRrset): DnsRecordSet | undefined {
	const type = rrset.type as DnsRecordType;
	if (!ALL_RECORD_TYPES.includes(type)) return undefined;
	const values = rrset.records
		.filter((r) => !r.disabled)
		.map((r) => valueFromContent(type, r.content));
	if (values.length === 0) return undefined;
	return { name: rrset.name.toLowerCase().replace(/\.$/, ""), type, ttl: rrset.ttl, values };
}

function parseJson(text: string): unknown {
	try {
		return JSON.parse(text);
	} catch {
		throw new DnsProviderError("unavailable", "PowerDNS answered with a body that is not JSON");
	}
}

/** PowerDNS explains a refusal in `{ "error": "..." }`; anything else is cut short. */
function serverMessage(text: string, secret: string): string {
	let message = text;
	try {
		const parsed = JSON.parse(text) as { error?: unknown };
		if (typeof parsed.error === "string") message = parsed.error;
	} catch {
		// Not JSON: a plain-text status line such as "Not Found".
	}
	return redactSecret(message.trim().slice(0, 300), secret);
}
