import { z } from "zod";
import type { ProviderFactory } from "../registry";
import type { Capabilities, StorageProvider } from "../types";

/**
 * Keys and certificates rest in the tenant's home region database (sealed by the secret box),
 * so they stay wherever that region is. Nothing to configure: the region is the setting.
 */
export class RegionalDbStorage implements StorageProvider {
	constructor(readonly capabilities: Capabilities) {}
}

export const regionalDbStorageFactory: ProviderFactory<"storage"> = {
	kind: "storage",
	type: "regional-db",
	settingsSchema: z.strictObject({}),
	endpointSettings: [],
	create: ({ capabilities }) => new RegionalDbStorage(capabilities),
};
