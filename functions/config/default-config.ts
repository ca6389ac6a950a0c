import type { z } from "zod";
import type { configSchema } from "./schema";

/**
 * What `npm start` runs without a config file: two regions on embedded libSQL files, the
 * internal CA, and DNS that changes nothing because `*.localhost` already resolves here.
 */
export function defaultConfig(dataDir = "data"): z.input<typeof configSchema> {
	const embedded = {
		storage: "regional-store",
		relay: "direct",
		issuer: "internal-ca",
		dns: "localhost-dns",
	};
	return {
		baseDomain: "localhost",
		dataDir,
		regions: [
			{ id: "eu-central", jurisdiction: "EU", database: { url: `file:${dataDir}/eu-central.db` } },
			{ id: "us-east", jurisdiction: "US", database: { url: `file:${dataDir}/us-east.db` } },
		],
		providers: {
			"localhost-dns": { kind: "dns", type: "noop", capabilities: { jurisdiction: "regional" } },
			"internal-ca": {
				kind: "issuer",
				type: "internal",
				capabilities: { jurisdiction: "regional" },
			},
			"regional-store": {
				kind: "storage",
				type: "regional-db",
				capabilities: { jurisdiction: "regional" },
			},
			direct: { kind: "relay", type: "direct", capabilities: { jurisdiction: "regional" } },
		},
		profiles: {
			standard: { providers: { ...embedded } },
			sovereign: { providers: { ...embedded } },
			byo: { providers: { storage: "regional-store", relay: "direct" } },
		},
		webhooks: {
			platforms: [{ id: "default", secrets: [{ env: "CASTELLAN_WEBHOOK_SECRET" }] }],
		},
	};
}
