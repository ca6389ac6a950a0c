import type { ControlStore } from "../../db/store";
import type { CastellanConfig } from "../config/schema";
import type { ProviderLookup } from "../providers/build-providers";
import type { ProviderRegistry } from "../providers/registry";
import type { Clock, Logger } from "../runtime";
import type { SecretBox } from "../secrets/secret-box";

/** What every service call receives: built once at the entry, plus who is acting. */
/** Looks up DNS for custom-domain verification (Node: the system or configured resolvers). */
export interface DomainResolver {
	cname(name: string): Promise<string[]>;
	txt(name: string): Promise<string[]>;
}

/** A webhook secret that was resolved at start, with the platform it authenticates. */
export interface WebhookSecret {
	owner: string;
	secret: string;
}

export interface Platform {
	config: CastellanConfig;
	store: ControlStore;
	registry: ProviderRegistry;
	providers: ProviderLookup;
	secrets: SecretBox;
	clock: Clock;
	logger: Logger;
	resolver: DomainResolver;
	webhookSecrets: WebhookSecret[];
}

export interface ServiceContext {
	platform: Platform;
	/** Audit actor: `token:<id>`, `cli`, `system:<job>`. */
	actor: string;
}
