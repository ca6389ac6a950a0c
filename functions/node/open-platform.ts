import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { createClient } from "@libsql/client";
import { eq, ne } from "drizzle-orm";
import { redactUrl } from "../../db/client";
import { hostnames, regions as regionsTable } from "../../db/schema/catalog";
import { acmeAccounts, certificates, internalCa } from "../../db/schema/region";
import { openStore } from "../../db/store";
import { appendAuditEvent } from "../audit/audit-chain";
import { type CastellanConfig, catalogLocation, masterKeySource } from "../config/schema";
import { buildProviders } from "../providers/build-providers";
import type { ProviderRegistry } from "../providers/registry";
import { type Clock, type Logger, silentLogger, systemClock } from "../runtime";
import { acmeAccountKeyBinding } from "../secrets/acme-binding";
import { certificateKeyBinding, internalCaKeyBinding } from "../secrets/bindings";
import { createSecretBox } from "../secrets/envelope";
import type { SecretBox } from "../secrets/secret-box";
import type { DomainResolver, Platform } from "../services/context";
import { resolveWebhookSecrets } from "../webhooks/resolve-secrets";
import { nodeDomainResolver } from "./dns-resolver";
import { loadMasterKeyring } from "./master-key";
import { migrateStore } from "./migrate";
import { createNodeRegistry } from "./node-registry";

export interface OpenPlatformOptions {
	config: CastellanConfig;
	env: Record<string, string | undefined>;
	/** Apply migrations first (start does on embedded files; `castellan migrate` always does). */
	migrate: boolean;
	registry?: ProviderRegistry;
	clock?: Clock;
	logger?: Logger;
	resolver?: DomainResolver;
}

export interface OpenPlatform extends Platform {
	/** True when this start created the catalog's region list (and, if needed, the master key). */
	firstStart: boolean;
	masterKeyCreated: boolean;
	close(): void;
}

/** True when every database is an embedded file (or in memory): the zero-setup default. */
export function isEmbedded(config: CastellanConfig): boolean {
	const urls = [catalogLocation(config).url, ...config.regions.map((r) => r.database.url)];
	return urls.every((u) => u.startsWith("file:") || u === ":memory:");
}

/** Builds the running platform from a validated config: store, keys, providers. */
export async function openPlatform(options: OpenPlatformOptions): Promise<OpenPlatform> {
	const { config, env } = options;
	const clock = options.clock ?? systemClock;
	const logger = options.logger ?? silentLogger;
	const registry = options.registry ?? createNodeRegistry();
	const catalog = catalogLocation(config);

	for (const url of [catalog.url, ...config.regions.map((r) => r.database.url)]) {
		if (url.startsWith("file:"))
			mkdirSync(dirname(url.slice("file:".length).split("?")[0] ?? ""), { recursive: true });
	}
	const store = await openStore(createClient, {
		catalog,
		regions: config.regions.map((r) => ({
			id: r.id,
			jurisdiction: r.jurisdiction,
			url: r.database.url,
			authToken: r.database.authToken,
		})),
	});
	try {
		if (options.migrate) await migrateStore(store);
		const known = await store.catalog.select().from(regionsTable);
		const firstStart = known.length === 0;
		const { keyring, created } = await loadMasterKeyring(masterKeySource(config), env, {
			createIfMissing: firstStart,
		});
		const secrets = createSecretBox(keyring);
		await proveMasterKey(store, secrets);
		await syncRegions(store, config, clock, known);
		const providers = buildProviders(config.providers, registry, { store, secrets, clock, env });
		const webhooks = resolveWebhookSecrets(config, env);
		if (webhooks.missing.length > 0) {
			logger.log(
				"warn",
				"webhook secrets not set: provisioning webhooks from these platforms are refused",
				{
					variables: webhooks.missing,
				},
			);
		}
		return {
			config,
			store,
			registry,
			providers,
			secrets,
			clock,
			logger,
			resolver: options.resolver ?? nodeDomainResolver(config.dnsResolvers),
			webhookSecrets: webhooks.secrets,
			firstStart,
			masterKeyCreated: created,
			close: () => store.close(),
		};
	} catch (err) {
		store.close();
		throw err;
	}
}

/**
 * Opens one existing secret per region, so a wrong master key stops the start with a clear
 * message instead of surfacing later as a failed handshake.
 */
async function proveMasterKey(store: Platform["store"], secrets: SecretBox): Promise<void> {
	for (const region of store.regions()) {
		const [ca] = await region.db.select().from(internalCa).limit(1);
		if (ca) {
			await secrets.open(ca.privateKeyCiphertext, internalCaKeyBinding(region.id, ca.id));
			continue;
		}
		// Discarded keys of deleted tenants are empty strings: skip them.
		const [cert] = await region.db
			.select()
			.from(certificates)
			.where(ne(certificates.privateKeyCiphertext, ""))
			.limit(1);
		if (cert) {
			await secrets.open(cert.privateKeyCiphertext, certificateKeyBinding(cert.tenantId, cert.id));
			continue;
		}
		const [account] = await region.db.select().from(acmeAccounts).limit(1);
		if (account)
			await secrets.open(
				account.privateKeyCiphertext,
				acmeAccountKeyBinding(region.id, account.id),
			);
	}
}

/** Mirrors the configured regions into the catalog; each change is a platform audit event. */
async function syncRegions(
	store: Platform["store"],
	config: CastellanConfig,
	clock: Clock,
	known: Array<typeof regionsTable.$inferSelect>,
): Promise<void> {
	for (const region of config.regions) {
		const handle = store.region(region.id);
		const databaseUrl = redactUrl(region.database.url);
		const before = known.find((k) => k.id === region.id);
		if (before && before.jurisdiction === region.jurisdiction && before.databaseUrl === databaseUrl)
			continue;
		const now = clock.now();
		await store.catalog
			.insert(regionsTable)
			.values({ id: region.id, jurisdiction: region.jurisdiction, databaseUrl, updatedAt: now })
			.onConflictDoUpdate({
				target: regionsTable.id,
				set: { jurisdiction: region.jurisdiction, databaseUrl, updatedAt: now },
			});
		await handle.db.transaction(async (tx) => {
			await appendAuditEvent(
				tx,
				{
					chain: "platform",
					actor: "system:start",
					action: before ? "region.changed" : "region.registered",
					subject: region.id,
					data: {
						jurisdiction: region.jurisdiction,
						databaseUrl,
						...(before
							? { previous: { jurisdiction: before.jurisdiction, databaseUrl: before.databaseUrl } }
							: {}),
					},
				},
				{ clock },
			);
		});
	}
	const configured = new Set(config.regions.map((r) => r.id));
	for (const stale of known.filter((k) => !configured.has(k.id))) {
		// A region with tenants cannot silently disappear: their data would become unreachable.
		const [inUse] = await store.catalog
			.select()
			.from(hostnames)
			.where(eq(hostnames.regionId, stale.id))
			.limit(1);
		if (inUse) {
			throw new Error(
				`region "${stale.id}" still holds tenants (e.g. ${inUse.hostname}) but is missing from the configuration: add it back to regions`,
			);
		}
		await store.catalog.delete(regionsTable).where(eq(regionsTable.id, stale.id));
	}
}
