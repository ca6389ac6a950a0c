import type { z } from "zod";
import { isSupportedDatabaseUrl } from "../../db/client";
import {
	type CastellanConfig,
	catalogLocation,
	configSchema,
	PROFILE_NAMES,
	type ProfileName,
} from "../config/schema";
import type { ProviderRegistry } from "../providers/registry";
import { PROVIDER_KINDS, type ProviderKind } from "../providers/types";
import { jsonPath, type Violation, zodViolations } from "./violations";

export type ConfigCheck =
	| { ok: true; config: CastellanConfig; violations: [] }
	| { ok: false; violations: Violation[] };

/**
 * Parses and checks a configuration document. Every rule is checked (not just the first one
 * broken), so an operator fixes a file in one pass. Nothing runs on a config that fails here.
 */
export function checkConfig(input: unknown, registry: ProviderRegistry): ConfigCheck {
	const parsed = configSchema.safeParse(input);
	if (!parsed.success) return { ok: false, violations: zodViolations(parsed.error) };
	const config = parsed.data;
	const violations = [
		...checkRegions(config),
		...checkPorts(config),
		...checkProviders(config, registry),
		...checkProfiles(config),
		...checkWebhooks(config),
	];
	return violations.length === 0 ? { ok: true, config, violations: [] } : { ok: false, violations };
}

function checkRegions(config: CastellanConfig): Violation[] {
	const out: Violation[] = [];
	const ids = new Set<string>();
	if (!isSupportedDatabaseUrl(catalogLocation(config).url)) {
		out.push({ path: "$.catalog.url", rule: unsupportedUrl });
	}
	config.regions.forEach((region, i) => {
		if (ids.has(region.id)) {
			out.push({ path: `$.regions[${i}].id`, rule: `duplicate region id "${region.id}"` });
		}
		ids.add(region.id);
		if (!isSupportedDatabaseUrl(region.database.url)) {
			out.push({ path: `$.regions[${i}].database.url`, rule: unsupportedUrl });
		}
	});
	const byId = new Map(config.regions.map((r) => [r.id, r]));
	config.regions.forEach((region, i) => {
		region.backupRegions.forEach((backup, j) => {
			const path = `$.regions[${i}].backupRegions[${j}]`;
			if (backup === region.id) out.push({ path, rule: "a region cannot be its own backup" });
			else if (!byId.has(backup)) out.push({ path, rule: `unknown region "${backup}"` });
		});
	});
	return out;
}

const unsupportedUrl =
	"unsupported database URL (use file:PATH, :memory:, libsql://HOST, http(s)://HOST or ws(s)://HOST)";

function checkPorts(config: CastellanConfig): Violation[] {
	const seen = new Map<number, string>();
	const out: Violation[] = [];
	for (const [name, value] of Object.entries(config.ports)) {
		const other = seen.get(value);
		if (other)
			out.push({
				path: `$.ports.${name}`,
				rule: `port ${value} is already used by ports.${other}`,
			});
		seen.set(value, name);
	}
	return out;
}

function checkProviders(config: CastellanConfig, registry: ProviderRegistry): Violation[] {
	const out: Violation[] = [];
	for (const [name, provider] of Object.entries(config.providers)) {
		out.push(
			...checkProviderDeclaration(provider, registry, ["providers", name], config.providers),
		);
	}
	return out;
}

/**
 * One provider declaration: a registered type, settings its schema accepts, https endpoints,
 * and settings that name other providers naming existing ones of the right kind. Shared by
 * the config file's `providers` and a tenant's own provider bindings.
 */
export function checkProviderDeclaration(
	provider: { kind: ProviderKind; type: string; settings: Record<string, unknown> },
	registry: ProviderRegistry,
	at: PropertyKey[],
	configured: CastellanConfig["providers"],
): Violation[] {
	const out: Violation[] = [];
	const path = (...rest: PropertyKey[]) => jsonPath([...at, ...rest]);
	const factory = registry.get(provider.kind, provider.type);
	if (!factory) {
		const known = registry.types(provider.kind);
		return [
			{
				path: path("type"),
				rule: `unknown ${provider.kind} provider type "${provider.type}" (known: ${known.join(", ") || "none"})`,
			},
		];
	}
	const settings = factory.settingsSchema.safeParse(provider.settings);
	if (!settings.success) return zodViolations(settings.error as z.ZodError, [...at, "settings"]);
	for (const [key, kind] of Object.entries(factory.providerSettings ?? {})) {
		const value = provider.settings[key];
		if (typeof value !== "string") continue;
		const target = configured[value];
		if (!target) out.push({ path: path("settings", key), rule: `unknown provider "${value}"` });
		else if (target.kind !== kind) {
			out.push({
				path: path("settings", key),
				rule: `provider "${value}" is ${withArticle(target.kind)} provider, not ${kind}`,
			});
		}
	}
	for (const key of factory.endpointSettings) {
		const value = provider.settings[key];
		if (typeof value === "string" && !isAllowedEndpoint(value)) {
			out.push({
				path: path("settings", key),
				rule: "must be an https:// URL (http:// is allowed only for loopback addresses)",
			});
		}
	}
	return out;
}

/** Sovereign: a provider must work inside the region's jurisdiction (or only in the region). */
export function sovereignJurisdictionRule(
	region: { id: string; jurisdiction: string },
	providerName: string,
	capabilities: { jurisdiction: string },
): string | undefined {
	const j = capabilities.jurisdiction;
	if (j === "regional" || j === region.jurisdiction) return undefined;
	return `sovereign profile: region "${region.id}" is in jurisdiction ${region.jurisdiction} but provider "${providerName}" declares jurisdiction ${j}; bind a provider inside ${region.jurisdiction} for this region`;
}

/** Byo: DNS and certificates are the customer's (see ADR 0006 for storage and relay). */
export function byoControlRule(
	kind: ProviderKind,
	providerName: string,
	capabilities: { customerControlled?: boolean | undefined },
): string | undefined {
	if (!isCustomerKind(kind) || capabilities.customerControlled) return undefined;
	return `byo profile: ${kind} must be customer-controlled, but provider "${providerName}" does not declare customerControlled: true`;
}

/** https everywhere; plain http only to this machine, where nothing crosses a network. */
export function isAllowedEndpoint(value: string): boolean {
	let url: URL;
	try {
		url = new URL(value);
	} catch {
		return false;
	}
	if (url.protocol === "https:") return true;
	if (url.protocol !== "http:") return false;
	return ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname);
}

interface ResolvedBinding {
	providerName: string;
	path: string;
}

/** Which provider a profile uses for `kind` in `regionId`, and where in the file that was said. */
export function resolveBinding(
	config: CastellanConfig,
	profile: ProfileName,
	regionId: string,
	kind: ProviderKind,
): ResolvedBinding | undefined {
	const p = config.profiles[profile];
	if (!p) return undefined;
	const regional = p.regions[regionId]?.[kind];
	if (regional)
		return {
			providerName: regional,
			path: jsonPath(["profiles", profile, "regions", regionId, kind]),
		};
	const shared = p.providers[kind];
	if (shared)
		return { providerName: shared, path: jsonPath(["profiles", profile, "providers", kind]) };
	return undefined;
}

function checkProfiles(config: CastellanConfig): Violation[] {
	const out: Violation[] = [];
	const regionIds = new Set(config.regions.map((r) => r.id));
	for (const profile of PROFILE_NAMES) {
		const p = config.profiles[profile];
		if (!p) continue;
		for (const regionId of Object.keys(p.regions)) {
			if (!regionIds.has(regionId)) {
				out.push({
					path: jsonPath(["profiles", profile, "regions", regionId]),
					rule: `unknown region "${regionId}"`,
				});
			}
		}
		// Each binding statement is checked once for reference and kind, then per region for policy.
		const reported = new Set<string>();
		for (const region of config.regions) {
			for (const kind of PROVIDER_KINDS) {
				const binding = resolveBinding(config, profile, region.id, kind);
				if (!binding) {
					if (profile !== "byo") {
						out.push({
							path: jsonPath(["profiles", profile, "providers", kind]),
							rule: `no ${kind} provider for region "${region.id}": bind one here or under profiles.${profile}.regions.${region.id}.${kind}`,
						});
					}
					continue;
				}
				const provider = config.providers[binding.providerName];
				const first = !reported.has(binding.path);
				reported.add(binding.path);
				if (!provider) {
					if (first)
						out.push({ path: binding.path, rule: `unknown provider "${binding.providerName}"` });
					continue;
				}
				if (provider.kind !== kind) {
					if (first) {
						out.push({
							path: binding.path,
							rule: `provider "${binding.providerName}" is ${withArticle(provider.kind)} provider, not ${kind}`,
						});
					}
					continue;
				}
				const sovereign =
					profile === "sovereign"
						? sovereignJurisdictionRule(region, binding.providerName, provider.capabilities)
						: undefined;
				if (sovereign) out.push({ path: binding.path, rule: sovereign });
				const byo =
					profile === "byo" && first
						? byoControlRule(kind, binding.providerName, provider.capabilities)
						: undefined;
				if (byo) out.push({ path: binding.path, rule: byo });
			}
		}
	}
	if (!PROFILE_NAMES.some((name) => config.profiles[name])) {
		out.push({
			path: "$.profiles",
			rule: "at least one of standard, sovereign, byo must be defined",
		});
	}
	return out;
}

/** In byo, DNS and certificates are the customer's; storage and relay may stay regional. */
function isCustomerKind(kind: ProviderKind): boolean {
	return kind === "dns" || kind === "issuer";
}

function checkWebhooks(config: CastellanConfig): Violation[] {
	const out: Violation[] = [];
	const seen = new Set<string>();
	config.webhooks.platforms.forEach((platform, i) => {
		if (seen.has(platform.id))
			out.push({
				path: `$.webhooks.platforms[${i}].id`,
				rule: `duplicate platform id "${platform.id}"`,
			});
		seen.add(platform.id);
		if (platform.notifyUrl && !isAllowedEndpoint(platform.notifyUrl)) {
			out.push({
				path: `$.webhooks.platforms[${i}].notifyUrl`,
				rule: "must be an https:// URL (http:// is allowed only for loopback addresses)",
			});
		}
	});
	return out;
}

function withArticle(kind: ProviderKind): string {
	return `${kind === "issuer" ? "an" : "a"} ${kind}`;
}
