import { createDefaultRegistry } from "../providers/default-registry";
import type { ProviderRegistry } from "../providers/registry";
import { acmeIssuerFactory } from "./acme-issuer";

/**
 * Every provider type of the Node runtime: the runtime-neutral ones plus those that need Node
 * built-ins (ACME through acme-client). Node entries use this; the Workers build never imports it.
 */
export function createNodeRegistry(): ProviderRegistry {
	return createDefaultRegistry().register(acmeIssuerFactory);
}
