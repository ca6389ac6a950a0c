import { z } from "zod";
import { PROFILE_NAMES } from "../config/schema";

const tenantId = z.string().regex(/^[A-Za-z0-9_-]{3,64}$/, "must be 3-64 letters, digits, _ or -");
const hostname = z
	.string()
	.max(253)
	.regex(
		/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/,
		"must be a lower-case fully qualified DNS name",
	);

const base = {
	/** The platform's event id: the idempotency key. */
	id: z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, "must be 1-128 letters, digits, _ . : or -"),
	createdAt: z.string().datetime().optional(),
};

export const provisioningEventSchema = z.discriminatedUnion("type", [
	z.strictObject({
		...base,
		type: z.literal("tenant.created"),
		data: z.strictObject({
			tenantId,
			slug: z.string(),
			profile: z.enum(PROFILE_NAMES),
			homeRegion: z.string().min(1),
			allowedRegions: z.array(z.string().min(1)).min(1).optional(),
		}),
	}),
	z.strictObject({
		...base,
		type: z.literal("tenant.updated"),
		data: z.strictObject({
			tenantId,
			profile: z.enum(PROFILE_NAMES).optional(),
			allowedRegions: z.array(z.string().min(1)).min(1).optional(),
		}),
	}),
	z.strictObject({
		...base,
		type: z.literal("tenant.deleted"),
		data: z.strictObject({ tenantId }),
	}),
	z.strictObject({
		...base,
		type: z.literal("domain.added"),
		data: z.strictObject({
			tenantId,
			hostname,
			verification: z.enum(["cname", "txt"]).default("cname"),
		}),
	}),
	z.strictObject({
		...base,
		type: z.literal("domain.removed"),
		data: z.strictObject({ tenantId, hostname }),
	}),
]);

export type ProvisioningEvent = z.infer<typeof provisioningEventSchema>;
export type ProvisioningEventType = ProvisioningEvent["type"];
