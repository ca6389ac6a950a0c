import { eq } from "drizzle-orm";
import { z } from "zod";
import { bumpRouteVersion } from "../../db/route-version";
import { instances, nodes } from "../../db/schema/region";
import { appendAuditEvent, PLATFORM_CHAIN } from "../audit/audit-chain";
import { AppError } from "../errors";
import { zodViolations } from "../policy/violations";
import { newId } from "../runtime";
import type { ServiceContext } from "./context";

const httpUrl = z
	.string()
	.url()
	.refine((u) => /^https?:\/\//.test(u), "must be an http:// or https:// URL");

export const registerNodeInput = z.strictObject({
	regionId: z.string().min(1),
	name: z
		.string()
		.regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "must be lower-case letters, digits and dashes"),
	/** The address DNS records point at. */
	address: z.union([z.ipv4(), z.ipv6()]),
	healthUrl: httpUrl.optional(),
	/** Origins on this node the edge proxies to. */
	instanceUrls: z.array(httpUrl).min(1),
	dedicatedTenantId: z.string().optional(),
});

/**
 * Adds a data-plane node with its instances to a region, or replaces them (same name). Its
 * health starts unknown and is eligible until probes say otherwise; the edge reloads at once.
 */
export async function registerNode({
	ctx,
	input,
}: {
	ctx: ServiceContext;
	input: unknown;
}): Promise<{ nodeId: string }> {
	const parsed = registerNodeInput.safeParse(input);
	if (!parsed.success) throw AppError.validation(zodViolations(parsed.error));
	const data = parsed.data;
	const { store, clock } = ctx.platform;
	if (!store.hasRegion(data.regionId)) {
		throw AppError.validation([{ path: "$.regionId", rule: `unknown region "${data.regionId}"` }]);
	}
	const region = store.region(data.regionId);
	const now = clock.now();
	return region.db.transaction(async (tx) => {
		const [existing] = await tx.select().from(nodes).where(eq(nodes.name, data.name)).limit(1);
		const nodeId = existing?.id ?? newId("node");
		await tx
			.insert(nodes)
			.values({
				id: nodeId,
				regionId: data.regionId,
				name: data.name,
				address: data.address,
				healthUrl: data.healthUrl,
				dedicatedTenantId: data.dedicatedTenantId,
				state: "unknown",
				updatedAt: now,
			})
			.onConflictDoUpdate({
				target: nodes.id,
				set: {
					address: data.address,
					healthUrl: data.healthUrl ?? null,
					dedicatedTenantId: data.dedicatedTenantId ?? null,
					updatedAt: now,
				},
			});
		await tx.delete(instances).where(eq(instances.nodeId, nodeId));
		for (const url of data.instanceUrls) {
			await tx.insert(instances).values({ id: newId("ins"), nodeId, url, createdAt: now });
		}
		await bumpRouteVersion(tx, now);
		await appendAuditEvent(
			tx,
			{
				chain: PLATFORM_CHAIN,
				actor: ctx.actor,
				action: existing ? "node.updated" : "node.registered",
				subject: nodeId,
				data: {
					name: data.name,
					address: data.address,
					instances: data.instanceUrls,
					dedicatedTenantId: data.dedicatedTenantId ?? null,
				},
			},
			{ clock },
		);
		return { nodeId };
	});
}
