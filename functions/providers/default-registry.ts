import { cloudflareDnsFactory } from "./dns/cloudflare";
import { noopDnsFactory } from "./dns/noop-dns";
import { powerDnsFactory } from "./dns/powerdns";
import { internalCaFactory } from "./issuers/internal-ca";
import { ProviderRegistry } from "./registry";
import { directRelayFactory } from "./relay/direct";
import { regionalDbStorageFactory } from "./storage/regional-db";

/** Every provider type this build knows; a new provider adds one `register` line here. */
export function createDefaultRegistry(): ProviderRegistry {
	return new ProviderRegistry()
		.register(noopDnsFactory)
		.register(powerDnsFactory)
		.register(cloudflareDnsFactory)
		.register(internalCaFactory)
		.register(regionalDbStorageFactory)
		.register(directRelayFactory);
}
