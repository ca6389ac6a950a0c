import { createClient } from "@libsql/client/web";
import { openStore } from "../../db/store";
import { catalogLocation } from "../config/schema";
import { checkConfig } from "../policy/check-config";
import { formatViolation } from "../policy/violations";
import { buildProviders } from "../providers/build-providers";
import { createDefaultRegistry } from "../providers/default-registry";
import { jsonLogger, systemClock } from "../runtime";
import { createSecretBox } from "../secrets/envelope";
import { parseMasterKeyring } from "../secrets/keyring";
import type { DomainResolver, Platform } from "../services/context";
import { resolveWebhookSecrets } from "../webhooks/resolve-secrets";

/** The bindings the functions worker reads; secrets are set with `wrangler secret put`. */
export interface FunctionsEnv {
	/** The configuration document, JSON (a `[vars]` entry or a secret). */
	CASTELLAN_CONFIG: string;
	/** Master keys, comma-separated base64, current first. */
	CASTELLAN_MASTER_KEY: string;
	/** Where publishRouteSnapshot writes the edge's route snapshot (wrangler.toml `ROUTES`). */
	ROUTES?: import("@cloudflare/workers-types/latest").KVNamespace;
	[binding: string]: unknown;
}

export class WorkerConfigError extends Error {
	override name = "WorkerConfigError";
}

/**
 * The platform on Workers: the same config checks, the web libSQL client (sqld/Turso over
 * HTTPS), keys from a secret binding, DNS-over-HTTPS for custom-domain checks. Migrations are
 * applied beforehand with `castellan migrate` against the same databases.
 */
export async function openWorkerPlatform(env: FunctionsEnv): Promise<Platform> {
	let document: unknown;
	try {
		document = JSON.parse(env.CASTELLAN_CONFIG ?? "");
	} catch {
		throw new WorkerConfigError("CASTELLAN_CONFIG is not set or is not valid JSON");
	}
	const registry = createDefaultRegistry();
	const checked = checkConfig(document, registry);
	if (!checked.ok) throw new WorkerConfigError(checked.violations.map(formatViolation).join("; "));
	const config = checked.config;
	if (!env.CASTELLAN_MASTER_KEY)
		throw new WorkerConfigError("the CASTELLAN_MASTER_KEY secret is not set");
	const keyring = await parseMasterKeyring(env.CASTELLAN_MASTER_KEY, {
		format: "comma",
		source: "CASTELLAN_MASTER_KEY",
	});
	const strings = Object.fromEntries(
		Object.entries(env).filter((e): e is [string, string] => typeof e[1] === "string"),
	);
	const store = await openStore(createClient, {
		catalog: catalogLocation(config),
		regions: config.regions.map((r) => ({
			id: r.id,
			jurisdiction: r.jurisdiction,
			url: r.database.url,
			authToken: r.database.authToken,
		})),
	});
	const secrets = createSecretBox(keyring);
	const clock = systemClock;
	return {
		config,
		store,
		registry,
		providers: buildProviders(config.providers, registry, { store, secrets, clock, env: strings }),
		secrets,
		clock,
		logger: jsonLogger((line) => console.log(line)),
		resolver: dohResolver(),
		webhookSecrets: resolveWebhookSecrets(config, strings).secrets,
	};
}

/** DNS-over-HTTPS (JSON API), since Workers have no resolver API. */
export function dohResolver(endpoint = "https://cloudflare-dns.com/dns-query"): DomainResolver {
	const ask = async (name: string, type: "CNAME" | "TXT"): Promise<string[]> => {
		const res = await fetch(`${endpoint}?name=${encodeURIComponent(name)}&type=${type}`, {
			headers: { accept: "application/dns-json" },
		});
		if (!res.ok) throw new Error(`DNS-over-HTTPS answered ${res.status} for ${name} ${type}`);
		const body = (await res.json()) as { Answer?: Array<{ type: number; data: string }> };
		const code = type === "CNAME" ? 5 : 16;
		return (body.Answer ?? [])
			.filter((a) => a.type === code)
			.map((a) => (type === "TXT" ? a.data.replace(/^"|"$/g, "").replace(/" "/g, "") : a.data));
	};
	return { cname: (name) => ask(name, "CNAME"), txt: (name) => ask(name, "TXT") };
}
