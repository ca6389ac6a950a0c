import { eq } from "drizzle-orm";
import { auditEvents, certificates, dnsRecords, nodes } from "../../../db/schema/region";
import type { defaultConfig } from "../../../functions/config/default-config";
import type { ProbeResult, Prober, ProbeTarget } from "../../../functions/jobs/health-probe";
import type { ProviderLookup } from "../../../functions/providers/build-providers";
import type { CertificateIssuer, ProviderByKind } from "../../../functions/providers/types";
import type { Platform } from "../../../functions/services/context";
import { registerNode } from "../../../functions/services/nodes";
import { runJob } from "../../../functions/services/provisioning/run-jobs";
import { createTenant } from "../../../functions/services/tenants";
import { FakeClock } from "../../helpers/fake-clock";
import type { PdnsServer } from "../../helpers/pdns-server";
import { createTestPlatform, type TestPlatform } from "../../helpers/test-platform";
import { type HealthOrigin, startHealthOrigin } from "./health-origins";

export const EU = "eu-central";
export const EU_WEST = "eu-west";
export const US = "us-east";
export const ZONE = "tenants.example.test";
export const DAY_MS = 24 * 60 * 60 * 1000;

export interface JobsFixture {
	t: TestPlatform;
	clock: FakeClock;
	/** The platform every job under test receives (its providers can be overridden). */
	platform: Platform;
	/** Replaces the issuer the jobs see for `name` (the real one stays reachable as `realIssuer`). */
	overrideIssuer(name: string, issuer: CertificateIssuer): void;
	realIssuer(name: string): CertificateIssuer;
	close(): void;
}

/**
 * A real platform (libSQL files, internal CA) with three regions: eu-central (EU, backup
 * eu-west), eu-west (EU) and us-east (US), on a fake clock. With `pdns`, tenants' DNS goes to
 * that PowerDNS (zone tenants.example.test), through an EU provider and a US one.
 */
export async function createJobsFixture(
	options: { pdns?: PdnsServer; pebble?: PebbleSettings; dir?: string; clock?: FakeClock } = {},
): Promise<JobsFixture> {
	const clock = options.clock ?? new FakeClock(Date.parse("2026-11-30T10:00:00Z"));
	const t = await createTestPlatform({
		clock,
		...(options.dir ? { dir: options.dir } : {}),
		edit: (doc) => editConfig(doc, options.pdns, options.pebble),
	});
	const overrides = new Map<string, CertificateIssuer>();
	const providers: ProviderLookup = {
		get<K extends keyof ProviderByKind>(kind: K, name: string): ProviderByKind[K] {
			const replaced = kind === "issuer" ? overrides.get(name) : undefined;
			return (replaced as ProviderByKind[K] | undefined) ?? t.platform.providers.get(kind, name);
		},
		names: (kind) => t.platform.providers.names(kind),
	};
	const platform: Platform = { ...t.platform, providers };
	return {
		t,
		clock,
		platform,
		overrideIssuer: (name, issuer) => overrides.set(name, issuer),
		realIssuer: (name) => t.platform.providers.get("issuer", name),
		close: () => t.close(),
	};
}

/** The config document both the test process and a crash-runner child build from the same dir. */
/** Where the standard profile's ACME issuer ("acme-eu") finds Pebble; its DNS-01 goes to pdns. */
export interface PebbleSettings {
	directoryUrl: string;
	tlsCaPem: string;
	managementUrl: string;
}

export function editConfig(
	doc: ReturnType<typeof defaultConfig>,
	pdns: { apiUrl: string; apiKey: string } | undefined,
	pebble?: PebbleSettings,
): void {
	const dataDir = doc.dataDir ?? "data";
	const regions = doc.regions as Array<Record<string, unknown>>;
	const eu = regions.find((r) => r.id === EU)!;
	eu.backupRegions = [EU_WEST];
	regions.splice(1, 0, {
		id: EU_WEST,
		jurisdiction: "EU",
		database: { url: `file:${dataDir}/${EU_WEST}.db` },
	});
	if (!pdns) return;
	doc.baseDomain = ZONE;
	const settings = { apiUrl: pdns.apiUrl, apiKey: pdns.apiKey, zones: [ZONE] };
	const providers = doc.providers as Record<string, unknown>;
	providers["pdns-eu"] = {
		kind: "dns",
		type: "powerdns",
		settings,
		capabilities: { jurisdiction: "EU" },
	};
	providers["pdns-us"] = {
		kind: "dns",
		type: "powerdns",
		settings,
		capabilities: { jurisdiction: "US" },
	};
	const profiles = doc.profiles as Record<
		string,
		{ providers: Record<string, string>; regions?: Record<string, Record<string, string>> }
	>;
	profiles.standard!.providers.dns = "pdns-eu";
	profiles.sovereign!.providers.dns = "pdns-eu";
	profiles.sovereign!.regions = { [US]: { dns: "pdns-us" } };
	if (!pebble) return;
	providers["acme-eu"] = {
		kind: "issuer",
		type: "acme",
		settings: {
			directoryUrl: pebble.directoryUrl,
			dnsProvider: "pdns-eu",
			trustedRootsPem: pebble.tlsCaPem,
			trustAnchorUrl: `${pebble.managementUrl}/roots/0`,
		},
		capabilities: { jurisdiction: "EU" },
	};
	profiles.standard!.providers.issuer = "acme-eu";
}

export async function addNode(
	platform: Platform,
	input: {
		region: string;
		name: string;
		address: string;
		healthUrl?: string;
		instanceUrls?: string[];
		state?: "unknown" | "healthy" | "unhealthy";
	},
): Promise<string> {
	const { nodeId } = await registerNode({
		ctx: { platform, actor: "test" },
		input: {
			regionId: input.region,
			name: input.name,
			address: input.address,
			...(input.healthUrl ? { healthUrl: input.healthUrl } : {}),
			instanceUrls: input.instanceUrls ?? ["http://127.0.0.1:9"],
		},
	});
	// Nodes start "unknown"; tests usually start from a node already proven healthy.
	const state = input.state ?? "healthy";
	await platform.store
		.region(input.region)
		.db.update(nodes)
		.set({ state, dnsAppliedState: state === "unknown" ? null : state })
		.where(eq(nodes.id, nodeId));
	return nodeId;
}

/** Creates a tenant and runs its provisioning job to the end (DNS, certificate, route). */
export async function addTenant(
	platform: Platform,
	input: {
		id: string;
		slug: string;
		home: string;
		allowed?: string[];
		profile?: "standard" | "sovereign";
	},
): Promise<void> {
	const ctx = { platform, actor: "test" };
	const tenant = await createTenant({
		ctx,
		input: {
			id: input.id,
			slug: input.slug,
			homeRegion: input.home,
			profile: input.profile ?? "standard",
			...(input.allowed ? { allowedRegions: input.allowed } : {}),
		},
	});
	const outcome = await runJob(
		platform,
		platform.store.region(input.home),
		tenant.provisioning!.jobId,
		{
			holder: "test-provisioning",
		},
	);
	if (outcome?.state !== "succeeded")
		throw new Error(`provisioning ${input.id} did not finish: ${outcome?.lastError}`);
}

/** A prober whose answers the test sets per node; unknown nodes answer ok. Counts calls. */
export function scriptedProber(): Prober & {
	set(nodeId: string, ok: boolean): void;
	calls: ProbeTarget[];
} {
	const answers = new Map<string, boolean>();
	const calls: ProbeTarget[] = [];
	const prober = async (target: ProbeTarget): Promise<ProbeResult> => {
		calls.push(target);
		return answers.get(target.nodeId) === false
			? { ok: false, error: "scripted failure" }
			: { ok: true };
	};
	return Object.assign(prober, {
		set: (nodeId: string, ok: boolean) => void answers.set(nodeId, ok),
		calls,
	});
}

export async function nodeRow(platform: Platform, region: string, id: string) {
	const [row] = await platform.store.region(region).db.select().from(nodes).where(eq(nodes.id, id));
	return row!;
}

export async function dnsValues(platform: Platform, region: string, tenantId: string) {
	const rows = await platform.store
		.region(region)
		.db.select()
		.from(dnsRecords)
		.where(eq(dnsRecords.tenantId, tenantId));
	return Object.fromEntries(rows.map((r) => [r.type, [...r.values].sort()]));
}

export async function auditActions(platform: Platform, region: string, chain: string) {
	const rows = await platform.store
		.region(region)
		.db.select()
		.from(auditEvents)
		.where(eq(auditEvents.chain, chain))
		.orderBy(auditEvents.seq);
	return rows;
}

export async function activeCertificates(platform: Platform, region: string, tenantId: string) {
	const rows = await platform.store
		.region(region)
		.db.select()
		.from(certificates)
		.where(eq(certificates.tenantId, tenantId));
	return rows.filter((r) => r.status === "active");
}

/**
 * The failover scenario: two EU nodes (`eu-a`, `eu-b`) with real health origins and two EU
 * tenants (`ten_x`, `ten_y`). The caller owns the origins (to kill `a`, and to stop both).
 */
export async function twoEuNodesTwoTenants(platform: Platform): Promise<{
	a: HealthOrigin;
	b: HealthOrigin;
	aId: string;
}> {
	const a = await startHealthOrigin();
	const b = await startHealthOrigin();
	const aId = await addNode(platform, {
		region: EU,
		name: "eu-a",
		address: "192.0.2.10",
		healthUrl: a.healthUrl,
	});
	await addNode(platform, {
		region: EU,
		name: "eu-b",
		address: "192.0.2.11",
		healthUrl: b.healthUrl,
	});
	for (const id of ["ten_x", "ten_y"])
		await addTenant(platform, { id, slug: id.slice(4), home: EU });
	return { a, b, aId };
}
