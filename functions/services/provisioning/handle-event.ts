import { and, eq, inArray } from "drizzle-orm";
import { bumpRouteVersion, type RegionTx } from "../../../db/route-version";
import { hostnames } from "../../../db/schema/catalog";
import { customDomains, provisioningJobs, tenants, webhookEvents } from "../../../db/schema/region";
import type { RegionHandle } from "../../../db/store";
import { AppError } from "../../errors";
import type { ProvisioningEvent } from "../../webhooks/events";
import type { ServiceContext } from "../context";
import { createTenant, updateTenant } from "../tenants";
import { enqueueJob, randomHex } from "./enqueue-job";
import type { JobKind } from "./job-kinds";

export interface EventAnswer {
	/** Echoed on replays: the same event id always gets the same answer. */
	eventId: string;
	jobId: string;
	tenantId: string;
	status: "accepted";
}

interface HandleInput {
	event: ProvisioningEvent;
	platformId: string;
	/** SHA-256 of the raw body, to tell a replay from an id reused for another body. */
	bodyHash: string;
}

/**
 * Applies one verified provisioning event: records it (idempotency by event id, in the
 * tenant's region), makes the immediate change, and queues the job that does the rest.
 */
export async function handleProvisioningEvent({
	ctx,
	input,
}: {
	ctx: ServiceContext;
	input: HandleInput;
}): Promise<EventAnswer> {
	const { event, platformId } = input;
	const region = await regionFor(ctx, event, platformId);
	const replay = await findReplay(region, input);
	if (replay) return replay;

	switch (event.type) {
		case "tenant.created":
			return created(ctx, region, input, event);
		case "tenant.updated": {
			await ownedTenant(region, event.data.tenantId, platformId);
			const changes = { profile: event.data.profile, allowedRegions: event.data.allowedRegions };
			await updateTenant({ ctx, input: { id: event.data.tenantId, changes } });
			return record(ctx, region, input, event.data.tenantId, "provision", {});
		}
		case "tenant.deleted": {
			await ownedTenant(region, event.data.tenantId, platformId);
			return record(ctx, region, input, event.data.tenantId, "deprovision", {}, async (tx, now) => {
				// The edge stops serving at once (410); the job removes DNS, keys and routes.
				await tx
					.update(tenants)
					.set({ status: "deleted", updatedAt: now })
					.where(eq(tenants.id, event.data.tenantId));
				await tx
					.update(provisioningJobs)
					.set({
						state: "failed",
						lastError: "cancelled: the tenant was deleted",
						leaseHolder: null,
						leaseExpiresAt: null,
						updatedAt: now,
					})
					.where(
						and(
							eq(provisioningJobs.tenantId, event.data.tenantId),
							inArray(provisioningJobs.state, ["pending", "running"]),
						),
					);
				await bumpRouteVersion(tx, now);
			});
		}
		case "domain.added":
			return domainAdded(ctx, region, input, event);
		case "domain.removed": {
			await ownedTenant(region, event.data.tenantId, platformId);
			const [domain] = await region.db
				.select()
				.from(customDomains)
				.where(eq(customDomains.hostname, event.data.hostname))
				.limit(1);
			if (!domain || domain.tenantId !== event.data.tenantId || domain.status === "removed") {
				throw new AppError(
					"not_found",
					`custom domain ${event.data.hostname} is not registered for tenant ${event.data.tenantId}`,
				);
			}
			return record(ctx, region, input, event.data.tenantId, "domain-remove", {
				hostname: event.data.hostname,
			});
		}
	}
}

async function regionFor(
	ctx: ServiceContext,
	event: ProvisioningEvent,
	platformId: string,
): Promise<RegionHandle> {
	const { store } = ctx.platform;
	if (event.type === "tenant.created") {
		if (!store.hasRegion(event.data.homeRegion)) {
			throw AppError.validation([
				{ path: "$.data.homeRegion", rule: `unknown region "${event.data.homeRegion}"` },
			]);
		}
		return store.region(event.data.homeRegion);
	}
	const region = await store.locateTenant(event.data.tenantId);
	if (!region) throw new AppError("not_found", `tenant "${event.data.tenantId}" not found`);
	await ownedTenant(region, event.data.tenantId, platformId);
	return region;
}

/** Another platform's tenant answers exactly like a missing one: nothing to learn, nothing written. */
async function ownedTenant(region: RegionHandle, tenantId: string, platformId: string) {
	const tenant = await region.db.query.tenants.findFirst({ where: eq(tenants.id, tenantId) });
	if (!tenant || tenant.platformId !== platformId)
		throw new AppError("not_found", `tenant "${tenantId}" not found`);
	if (tenant.status === "deleted")
		throw new AppError("conflict", `tenant "${tenantId}" is deleted`);
	return tenant;
}

async function findReplay(
	region: RegionHandle,
	input: HandleInput,
): Promise<EventAnswer | undefined> {
	const [seen] = await region.db
		.select()
		.from(webhookEvents)
		.where(eq(webhookEvents.id, input.event.id))
		.limit(1);
	if (!seen) return undefined;
	if (seen.platformId !== input.platformId || seen.bodyHash !== input.bodyHash) {
		throw new AppError(
			"conflict",
			`event id "${input.event.id}" was already used for a different event`,
		);
	}
	return seen.response as unknown as EventAnswer;
}

async function created(
	ctx: ServiceContext,
	region: RegionHandle,
	input: HandleInput,
	event: Extract<ProvisioningEvent, { type: "tenant.created" }>,
): Promise<EventAnswer> {
	const existing = await region.db.query.tenants.findFirst({
		where: eq(tenants.id, event.data.tenantId),
	});
	let provisionJob: string | undefined;
	if (existing) {
		// A redelivery after a crash between creating the tenant and recording the event.
		if (existing.platformId !== input.platformId || existing.slug !== event.data.slug) {
			throw new AppError("conflict", `tenant "${event.data.tenantId}" already exists`);
		}
		const [first] = await region.db
			.select({ id: provisioningJobs.id })
			.from(provisioningJobs)
			.where(
				and(eq(provisioningJobs.tenantId, existing.id), eq(provisioningJobs.kind, "provision")),
			)
			.orderBy(provisioningJobs.createdAt)
			.limit(1);
		provisionJob = first?.id;
	} else {
		const tenant = await createTenant({
			ctx,
			input: {
				id: event.data.tenantId,
				slug: event.data.slug,
				profile: event.data.profile,
				homeRegion: event.data.homeRegion,
				allowedRegions: event.data.allowedRegions,
			},
			platformId: input.platformId,
			eventId: event.id,
		});
		provisionJob = tenant.provisioning?.jobId;
	}
	return record(ctx, region, input, event.data.tenantId, "provision", {}, undefined, provisionJob);
}

async function domainAdded(
	ctx: ServiceContext,
	region: RegionHandle,
	input: HandleInput,
	event: Extract<ProvisioningEvent, { type: "domain.added" }>,
): Promise<EventAnswer> {
	const tenant = await ownedTenant(region, event.data.tenantId, input.platformId);
	const { hostname } = event.data;
	if (
		hostname === ctx.platform.config.baseDomain ||
		hostname.endsWith(`.${ctx.platform.config.baseDomain}`)
	) {
		throw AppError.validation([
			{
				path: "$.data.hostname",
				rule: `custom domains must lie outside ${ctx.platform.config.baseDomain}`,
			},
		]);
	}
	const now = ctx.platform.clock.now();
	const claimed = await ctx.platform.store.catalog
		.insert(hostnames)
		.values({ hostname, tenantId: tenant.id, regionId: region.id, createdAt: now })
		.onConflictDoNothing()
		.returning();
	if (claimed.length === 0) {
		const [owner] = await ctx.platform.store.catalog
			.select()
			.from(hostnames)
			.where(eq(hostnames.hostname, hostname))
			.limit(1);
		if (owner?.tenantId !== tenant.id)
			throw new AppError("conflict", `hostname "${hostname}" is already taken`);
	}
	const token = randomToken();
	try {
		return await record(ctx, region, input, tenant.id, "domain-add", { hostname }, async (tx) => {
			await tx
				.insert(customDomains)
				.values({
					hostname,
					tenantId: tenant.id,
					verification: event.data.verification,
					token,
					status: "pending",
					createdAt: now,
					updatedAt: now,
				})
				.onConflictDoUpdate({
					target: customDomains.hostname,
					set: {
						verification: event.data.verification,
						token,
						status: "pending",
						verifiedAt: null,
						updatedAt: now,
					},
				});
		});
	} catch (err) {
		if (claimed.length > 0)
			await ctx.platform.store.catalog.delete(hostnames).where(eq(hostnames.hostname, hostname));
		throw err;
	}
}

/**
 * In one regional transaction: the event's own change, the job, the audit event and the
 * idempotency record. A concurrent delivery of the same event loses on the primary key and
 * replays the winner's answer.
 */
async function record(
	ctx: ServiceContext,
	region: RegionHandle,
	input: HandleInput,
	tenantId: string,
	kind: JobKind,
	jobInput: Record<string, unknown>,
	change?: (tx: RegionTx, now: Date) => Promise<void>,
	existingJobId?: string,
): Promise<EventAnswer> {
	const now = ctx.platform.clock.now();
	try {
		return await region.db.transaction(async (tx) => {
			await change?.(tx, now);
			const id =
				existingJobId ??
				(await enqueueJob(tx, {
					regionId: region.id,
					tenantId,
					kind,
					jobInput,
					eventId: input.event.id,
					actor: ctx.actor,
					clock: ctx.platform.clock,
				}));
			const answer: EventAnswer = {
				eventId: input.event.id,
				jobId: id,
				tenantId,
				status: "accepted",
			};
			await tx.insert(webhookEvents).values({
				id: input.event.id,
				platformId: input.platformId,
				tenantId,
				bodyHash: input.bodyHash,
				jobId: id,
				response: { ...answer },
				receivedAt: now,
			});
			return answer;
		});
	} catch (err) {
		const replay = await findReplay(region, input);
		if (replay) return replay;
		throw err;
	}
}

function randomToken(): string {
	return `castellan-verify-${randomHex(16)}`;
}
