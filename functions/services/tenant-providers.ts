import { and, eq } from "drizzle-orm";
import { z } from "zod";
import { providerBindings, tenants } from "../../db/schema/region";
import type { RegionHandle } from "../../db/store";
import { appendAuditEvent } from "../audit/audit-chain";
import { capabilitiesSchema } from "../config/schema";
import { AppError } from "../errors";
import {
	byoControlRule,
	checkProviderDeclaration,
	resolveBinding,
	sovereignJurisdictionRule,
} from "../policy/check-config";
import { jsonPath, type Violation, zodViolations } from "../policy/violations";
import type { Capabilities, ProviderByKind, ProviderKind } from "../providers/types";
import { providerSettingsBinding } from "../secrets/bindings";
import type { Platform, ServiceContext } from "./context";
import { enqueueJob } from "./provisioning/enqueue-job";

const KINDS = ["dns", "issuer"] as const;

const bindInput = z.union([
	/** One of the deployment's configured providers, by name. */
	z.strictObject({ provider: z.string().min(1) }),
	/** The customer's own provider: a registered type, its settings (credentials inline), capabilities. */
	z.strictObject({
		type: z.string().min(1),
		settings: z.record(z.string(), z.unknown()).default({}),
		capabilities: capabilitiesSchema,
	}),
]);

/** The name under which a tenant's own provider is recorded (e.g. on the DNS records it wrote). */
export function tenantProviderName(kind: ProviderKind): string {
	return `tenant:${kind}`;
}

/**
 * Binds a DNS or issuer provider to one tenant, overriding its profile's. Checked like the
 * config file (type, settings, https endpoints) and against the tenant's profile (sovereign:
 * inside the jurisdiction; byo: customer-controlled). Settings are sealed; the binding is
 * audited (without settings) and a provisioning job re-applies the tenant's DNS and certificate.
 */
export async function bindTenantProvider({
	ctx,
	input,
}: {
	ctx: ServiceContext;
	input: { tenantId: string; kind: string; body: unknown };
}): Promise<{ kind: ProviderKind; provider: string; jobId: string }> {
	const { platform } = ctx;
	if (!(KINDS as readonly string[]).includes(input.kind)) {
		throw AppError.validation([{ path: "$.kind", rule: `must be one of ${KINDS.join(", ")}` }]);
	}
	const kind = input.kind as (typeof KINDS)[number];
	const parsed = bindInput.safeParse(input.body);
	if (!parsed.success) throw AppError.validation(zodViolations(parsed.error));
	const { region, tenant } = await locate(platform, input.tenantId);

	const violations: Violation[] = [];
	let label: string;
	let capabilities: Capabilities;
	if ("provider" in parsed.data) {
		label = parsed.data.provider;
		const configured = platform.config.providers[label];
		if (!configured || configured.kind !== kind) {
			throw AppError.validation([
				{ path: "$.provider", rule: `no ${kind} provider named "${label}" is configured` },
			]);
		}
		capabilities = configured.capabilities as Capabilities;
	} else {
		label = tenantProviderName(kind);
		capabilities = parsed.data.capabilities as Capabilities;
		violations.push(...environmentReferences(parsed.data.settings, ["settings"]));
		violations.push(
			...checkProviderDeclaration(
				{ kind, type: parsed.data.type, settings: parsed.data.settings },
				platform.registry,
				[],
				platform.config.providers,
			),
		);
	}
	for (const regionId of tenant.allowedRegions) {
		const rule =
			tenant.profile === "sovereign"
				? sovereignJurisdictionRule(
						{ id: regionId, jurisdiction: platform.store.region(regionId).jurisdiction },
						label,
						capabilities,
					)
				: undefined;
		if (rule) violations.push({ path: "$.capabilities.jurisdiction", rule });
	}
	const byo = tenant.profile === "byo" ? byoControlRule(kind, label, capabilities) : undefined;
	if (byo) violations.push({ path: "$.capabilities.customerControlled", rule: byo });
	if (violations.length > 0) throw AppError.validation(violations);

	const now = platform.clock.now();
	const sealed =
		"provider" in parsed.data
			? null
			: await platform.secrets.seal(
					JSON.stringify(parsed.data.settings),
					providerSettingsBinding(tenant.id, kind),
				);
	const jobId = await region.db.transaction(async (tx) => {
		const row = {
			providerName: "provider" in parsed.data ? parsed.data.provider : null,
			type: "provider" in parsed.data ? null : parsed.data.type,
			settingsCiphertext: sealed,
			capabilities,
			updatedAt: now,
		};
		await tx
			.insert(providerBindings)
			.values({ tenantId: tenant.id, kind, ...row })
			.onConflictDoUpdate({ target: [providerBindings.tenantId, providerBindings.kind], set: row });
		await appendAuditEvent(
			tx,
			{
				chain: tenant.id,
				actor: ctx.actor,
				action: "provider.bound",
				subject: kind,
				data: {
					provider: label,
					type: row.type ?? platform.config.providers[label]?.type ?? null,
					capabilities,
				},
			},
			{ clock: platform.clock },
		);
		return enqueueJob(tx, {
			regionId: region.id,
			tenantId: tenant.id,
			kind: "provision",
			actor: ctx.actor,
			clock: platform.clock,
		});
	});
	return { kind, provider: label, jobId };
}

/**
 * The provider a tenant uses for `kind`: its own binding when it has one, else its profile's
 * in its home region. Undefined when neither exists (byo: the customer does it by hand).
 */
export async function tenantProvider<K extends "dns" | "issuer">(
	platform: Platform,
	region: RegionHandle,
	tenant: { id: string; profile: Parameters<typeof resolveBinding>[1] },
	kind: K,
): Promise<{ name: string; provider: ProviderByKind[K] } | undefined> {
	const [own] = await region.db
		.select()
		.from(providerBindings)
		.where(and(eq(providerBindings.tenantId, tenant.id), eq(providerBindings.kind, kind)))
		.limit(1);
	if (own?.providerName)
		return { name: own.providerName, provider: platform.providers.get(kind, own.providerName) };
	if (own?.type && own.settingsCiphertext) {
		const factory = platform.registry.get(kind, own.type);
		if (!factory)
			throw new AppError(
				"conflict",
				`tenant ${tenant.id}'s ${kind} provider type "${own.type}" is no longer registered`,
			);
		const settings = JSON.parse(
			await platform.secrets.openText(
				own.settingsCiphertext,
				providerSettingsBinding(tenant.id, kind),
			),
		);
		const provider = factory.create({
			name: tenantProviderName(kind),
			settings: factory.settingsSchema.parse(settings),
			capabilities: own.capabilities as Capabilities,
			// No environment: a tenant's settings must never read this server's variables.
			deps: {
				store: platform.store,
				secrets: platform.secrets,
				clock: platform.clock,
				env: {},
				providers: platform.providers,
			},
		});
		return { name: tenantProviderName(kind), provider };
	}
	const binding = resolveBinding(platform.config, tenant.profile, region.id, kind);
	return binding
		? { name: binding.providerName, provider: platform.providers.get(kind, binding.providerName) }
		: undefined;
}

/** `{ env: NAME }` in a tenant's settings would make the server send its own secrets: refuse. */
function environmentReferences(value: unknown, at: PropertyKey[]): Violation[] {
	if (typeof value !== "object" || value === null) return [];
	if (!Array.isArray(value) && "env" in value && Object.keys(value).length === 1) {
		return [
			{
				path: jsonPath(at),
				rule: "a tenant's provider credentials must be given inline; { env } refers to this server's environment",
			},
		];
	}
	return Object.entries(value).flatMap(([k, v]) =>
		environmentReferences(v, [...at, Array.isArray(value) ? Number(k) : k]),
	);
}

async function locate(platform: Platform, tenantId: string) {
	const region = await platform.store.locateTenant(tenantId);
	const tenant =
		region && (await region.db.query.tenants.findFirst({ where: eq(tenants.id, tenantId) }));
	if (!region || !tenant || tenant.status === "deleted")
		throw new AppError("not_found", `tenant "${tenantId}" not found`);
	return { region, tenant };
}
