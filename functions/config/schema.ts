import { z } from "zod";
import { secretSettingSchema } from "../providers/secret-setting";

export const PROFILE_NAMES = ["standard", "sovereign", "byo"] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];

const regionId = z
	.string()
	.regex(/^[a-z][a-z0-9-]{1,31}$/, "must be lower-case letters, digits and dashes (2-32 chars)");
const jurisdictionCode = z
	.string()
	.regex(/^[A-Z]{2,8}$/, 'must be an upper-case jurisdiction code such as "EU" or "US"');
const dnsName = z
	.string()
	.regex(
		/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/,
		"must be a lower-case DNS name",
	);
const port = z.number().int().min(1).max(65535);

export const databaseSchema = z.strictObject({
	url: z.string().min(1, "a database URL is required"),
	authToken: z.string().min(1).optional(),
});

export const regionSchema = z.strictObject({
	id: regionId,
	jurisdiction: jurisdictionCode,
	database: databaseSchema,
	/** Regions a tenant homed here may fail over to, in order of preference. */
	backupRegions: z.array(regionId).default([]),
});

export const capabilitiesSchema = z.looseObject({
	jurisdiction: z.union([jurisdictionCode, z.literal("regional"), z.literal("global")]),
	customerControlled: z.boolean().default(false),
});

export const providerSchema = z.strictObject({
	kind: z.enum(["dns", "issuer", "storage", "relay"]),
	type: z.string().min(1),
	settings: z.record(z.string(), z.unknown()).default({}),
	capabilities: capabilitiesSchema,
});

const bindingSchema = z.strictObject({
	dns: z.string().optional(),
	issuer: z.string().optional(),
	storage: z.string().optional(),
	relay: z.string().optional(),
});
export type ProfileBinding = z.infer<typeof bindingSchema>;

export const profileSchema = z.strictObject({
	/** Providers used in every region unless `regions.<id>` overrides a kind. */
	providers: bindingSchema.default({}),
	regions: z.record(z.string(), bindingSchema).default({}),
});

export const masterKeySchema = z.union([
	z.strictObject({ file: z.string().min(1) }),
	z.strictObject({
		env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, "must be an environment variable name"),
	}),
]);

/** A webhook secret: `{ env: NAME }` or inline, then long enough to resist guessing. */
export const webhookSecretSchema = secretSettingSchema.refine(
	(value) => typeof value !== "string" || value.length >= 32,
	"a secret given inline must be at least 32 characters",
);

export const platformSchema = z.strictObject({
	id: z
		.string()
		.regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "must be lower-case letters, digits and dashes"),
	/** HMAC secrets accepted for this platform's webhooks; several at once during rotation. */
	secrets: z.array(webhookSecretSchema).min(1, "give at least one webhook secret"),
	/** Where Castellan tells the platform that an endpoint is live (signed the same way). */
	notifyUrl: z.string().url().optional(),
});

export const webhooksSchema = z.strictObject({
	/** Signed timestamps further than this from now are refused. */
	toleranceSeconds: z.number().int().min(30).max(3600).default(300),
	platforms: z.array(platformSchema).default([]),
});

export const configSchema = z.strictObject({
	baseDomain: dnsName,
	dataDir: z.string().min(1).default("data"),
	ports: z
		.strictObject({
			https: port.default(8443),
			http: port.default(8080),
			api: port.default(8787),
		})
		.default({ https: 8443, http: 8080, api: 8787 }),
	/** Where the master key comes from; defaults to `<dataDir>/master.key`. */
	masterKey: masterKeySchema.optional(),
	/** The catalog database; defaults to `file:<dataDir>/catalog.db`. */
	catalog: databaseSchema.optional(),
	regions: z.array(regionSchema).min(1, "at least one region is required"),
	providers: z.record(z.string().regex(/^[a-z][a-z0-9-]*$/), providerSchema).default({}),
	profiles: z.strictObject({
		standard: profileSchema.optional(),
		sovereign: profileSchema.optional(),
		byo: profileSchema.optional(),
	}),
	webhooks: webhooksSchema.default({ toleranceSeconds: 300, platforms: [] }),
	/** DNS servers (`host:port`) for custom-domain checks; the system's resolvers when absent. */
	dnsResolvers: z
		.array(
			z
				.string()
				.regex(/^[0-9a-fA-F.:[\]]+(:\d{1,5})?$/, "must be an IP address with an optional :port"),
		)
		.optional(),
});

export type CastellanConfig = z.infer<typeof configSchema>;
export type RegionConfig = z.infer<typeof regionSchema>;
export type ProviderConfig = z.infer<typeof providerSchema>;
export type ProfileConfig = z.infer<typeof profileSchema>;

export type MasterKeySource = z.infer<typeof masterKeySchema>;

export function masterKeySource(config: CastellanConfig): MasterKeySource {
	return config.masterKey ?? { file: `${config.dataDir}/master.key` };
}

export function catalogLocation(config: CastellanConfig): z.infer<typeof databaseSchema> {
	return config.catalog ?? { url: `file:${config.dataDir}/catalog.db` };
}
