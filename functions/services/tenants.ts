import { and, desc, eq } from "drizzle-orm";
import { z } from "zod";
import { bumpRouteVersion } from "../../db/route-version";
import { hostnames } from "../../db/schema/catalog";
import {
	provisioningJobs,
	routes,
	tenants,
	type tenants as tenantsTable,
} from "../../db/schema/region";
import { appendAuditEvent } from "../audit/audit-chain";
import { PROFILE_NAMES, type ProfileName } from "../config/schema";
import { AppError } from "../errors";
import { resolveBinding } from "../policy/check-config";
import { checkTenantPlacement, orderAllowedRegions } from "../policy/tenant-placement";
import { zodViolations } from "../policy/violations";
import { newId } from "../runtime";
import type { ServiceContext } from "./context";
import { type JobView, jobView } from "./jobs";
import { enqueueJob } from "./provisioning/enqueue-job";

export type TenantRow = typeof tenantsTable.$inferSelect;

export interface TenantView {
	id: string;
	slug: string;
	profile: TenantRow["profile"];
	homeRegion: string;
	allowedRegions: string[];
	status: TenantRow["status"];
	hostnames: string[];
	/** The latest provisioning job: where it is and what went wrong last. */
	provisioning?: JobView;
	createdAt: string;
	updatedAt: string;
}

const slugSchema = z
	.string()
	.regex(
		/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/,
		"must be a DNS label: a-z, 0-9 and inner dashes, at most 63 characters",
	);

export const createTenantInput = z.strictObject({
	id: z
		.string()
		.regex(/^[A-Za-z0-9_-]{3,64}$/, "must be 3-64 letters, digits, _ or -")
		.optional(),
	slug: slugSchema,
	profile: z.enum(PROFILE_NAMES).default("standard"),
	homeRegion: z.string().min(1),
	allowedRegions: z.array(z.string().min(1)).min(1).optional(),
});

export const updateTenantInput = z
	.strictObject({
		profile: z.enum(PROFILE_NAMES).optional(),
		allowedRegions: z.array(z.string().min(1)).min(1).optional(),
		status: z.enum(["active", "suspended"]).optional(),
	})
	.refine(
		(v) => Object.keys(v).length > 0,
		"nothing to change: give profile, allowedRegions or status",
	);

function parse<T extends z.ZodType>(schema: T, input: unknown): z.infer<T> {
	const result = schema.safeParse(input);
	if (!result.success) throw AppError.validation(zodViolations(result.error));
	return result.data;
}

/**
 * Creates a tenant in its home region. The hostname is claimed in the catalog first (its
 * unique key settles races between two creators); if the regional write fails, the claim is
 * released, so nothing is left half-created.
 */
export async function createTenant({
	ctx,
	input,
	platformId = "default",
	eventId,
}: {
	ctx: ServiceContext;
	input: unknown;
	/** The platform that owns the tenant (the webhook sender); API and CLI tenants: "default". */
	platformId?: string;
	/** The webhook event that asked for it, recorded on the provisioning job. */
	eventId?: string;
}): Promise<TenantView> {
	const { config, store, clock } = ctx.platform;
	const data = parse(createTenantInput, input);
	const violations = checkTenantPlacement(config, data);
	if (violations.length > 0) throw AppError.validation(violations);

	const id = data.id ?? newId("ten");
	const hostname = `${data.slug}.${config.baseDomain}`;
	checkHostnameInZones(ctx, data.profile, data.homeRegion, hostname);
	const allowedRegions = orderAllowedRegions(
		config,
		data.homeRegion,
		data.allowedRegions ?? [data.homeRegion],
	);
	const now = clock.now();
	if (await store.locateTenant(id)) throw new AppError("conflict", `tenant "${id}" already exists`);

	const claimed = await store.catalog
		.insert(hostnames)
		.values({ hostname, tenantId: id, regionId: data.homeRegion, createdAt: now })
		.onConflictDoNothing()
		.returning();
	if (claimed.length === 0)
		throw new AppError("conflict", `hostname "${hostname}" is already taken`);

	const region = store.region(data.homeRegion);
	try {
		await region.db.transaction(async (tx) => {
			await tx.insert(tenants).values({
				id,
				slug: data.slug,
				profile: data.profile,
				homeRegion: data.homeRegion,
				allowedRegions,
				status: "provisioning",
				platformId,
				createdAt: now,
				updatedAt: now,
			});
			await appendAuditEvent(
				tx,
				{
					chain: id,
					actor: ctx.actor,
					action: "tenant.created",
					subject: id,
					data: {
						slug: data.slug,
						profile: data.profile,
						homeRegion: data.homeRegion,
						allowedRegions,
						hostname,
					},
				},
				{ clock },
			);
			// Provisioning (DNS, certificate, route) is queued in the same transaction.
			await enqueueJob(tx, {
				regionId: region.id,
				tenantId: id,
				kind: "provision",
				eventId,
				actor: ctx.actor,
				clock,
			});
		});
	} catch (err) {
		await store.catalog
			.delete(hostnames)
			.where(and(eq(hostnames.hostname, hostname), eq(hostnames.tenantId, id)));
		if (err instanceof Error && /UNIQUE constraint failed: tenants\.slug/.test(err.message)) {
			throw new AppError(
				"conflict",
				`slug "${data.slug}" is already taken in region ${data.homeRegion}`,
			);
		}
		throw err;
	}
	return getTenant({ ctx, input: { id } });
}

export async function getTenant({
	ctx,
	input,
}: {
	ctx: ServiceContext;
	input: { id: string };
}): Promise<TenantView> {
	const region = await ctx.platform.store.locateTenant(input.id);
	const row =
		region && (await region.db.query.tenants.findFirst({ where: eq(tenants.id, input.id) }));
	if (!region || !row) throw new AppError("not_found", `tenant "${input.id}" not found`);
	const names = await region.db
		.select({ hostname: routes.hostname })
		.from(routes)
		.where(eq(routes.tenantId, row.id));
	const [job] = await region.db
		.select()
		.from(provisioningJobs)
		.where(eq(provisioningJobs.tenantId, row.id))
		.orderBy(desc(provisioningJobs.createdAt))
		.limit(1);
	return {
		...toView(
			row,
			names.map((n) => n.hostname),
		),
		...(job ? { provisioning: jobView(job) } : {}),
	};
}

/** Every tenant of every region (fans out to each regional database; none is copied centrally). */
export async function listTenants({ ctx }: { ctx: ServiceContext }): Promise<TenantView[]> {
	const all: TenantView[] = [];
	for (const region of ctx.platform.store.regions()) {
		const rows = await region.db.select().from(tenants).orderBy(tenants.createdAt);
		const names = await region.db.select().from(routes);
		for (const row of rows) {
			all.push(
				toView(
					row,
					names.filter((n) => n.tenantId === row.id).map((n) => n.hostname),
				),
			);
		}
	}
	return all;
}

/** Changes a tenant's profile, residency or status, re-checked against policy, audited. */
export async function updateTenant({
	ctx,
	input,
}: {
	ctx: ServiceContext;
	input: { id: string; changes: unknown };
}): Promise<TenantView> {
	const { config, store, clock } = ctx.platform;
	const changes = parse(updateTenantInput, input.changes);
	const region = await store.locateTenant(input.id);
	const current =
		region && (await region.db.query.tenants.findFirst({ where: eq(tenants.id, input.id) }));
	if (!region || !current) throw new AppError("not_found", `tenant "${input.id}" not found`);
	if (current.status === "deleted")
		throw new AppError("conflict", `tenant "${input.id}" is deleted`);

	const next = {
		profile: changes.profile ?? current.profile,
		homeRegion: current.homeRegion,
		allowedRegions: changes.allowedRegions ?? current.allowedRegions,
	};
	const violations = checkTenantPlacement(config, next);
	if (violations.length > 0) throw AppError.validation(violations);
	const allowedRegions = orderAllowedRegions(config, next.homeRegion, next.allowedRegions);
	const now = clock.now();

	await region.db.transaction(async (tx) => {
		await tx
			.update(tenants)
			.set({
				profile: next.profile,
				allowedRegions,
				status: changes.status ?? current.status,
				updatedAt: now,
			})
			.where(eq(tenants.id, current.id));
		await appendAuditEvent(
			tx,
			{
				chain: current.id,
				actor: ctx.actor,
				action: "tenant.updated",
				subject: current.id,
				data: {
					before: {
						profile: current.profile,
						allowedRegions: current.allowedRegions,
						status: current.status,
					},
					after: {
						profile: next.profile,
						allowedRegions,
						status: changes.status ?? current.status,
					},
				},
			},
			{ clock },
		);
		await bumpRouteVersion(tx, now);
	});
	return getTenant({ ctx, input: { id: current.id } });
}

function toView(row: TenantRow, names: string[]): TenantView {
	return {
		id: row.id,
		slug: row.slug,
		profile: row.profile,
		homeRegion: row.homeRegion,
		allowedRegions: row.allowedRegions,
		status: row.status,
		hostnames: names.sort(),
		createdAt: row.createdAt.toISOString(),
		updatedAt: row.updatedAt.toISOString(),
	};
}

/** The tenant's hostname must lie in a zone its DNS provider serves, or nothing could resolve it. */
function checkHostnameInZones(
	ctx: ServiceContext,
	profile: ProfileName,
	regionId: string,
	hostname: string,
) {
	const binding = resolveBinding(ctx.platform.config, profile, regionId, "dns");
	const zones = binding && ctx.platform.providers.get("dns", binding.providerName).zones;
	if (!zones || zones.some((zone) => hostname === zone || hostname.endsWith(`.${zone}`))) return;
	throw AppError.validation([
		{
			path: "$.slug",
			rule: `${hostname} lies outside the zones served by dns provider "${binding.providerName}" (${zones.join(", ")})`,
		},
	]);
}
