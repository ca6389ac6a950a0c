import type { ControlStore } from "../../db/store";
import type { Clock } from "../runtime";
import type { SecretBox } from "../secrets/secret-box";
import type { ProviderByKind, ProviderKind } from "./types";

/**
 * What the running platform hands every provider factory. Built once by the entry (Node or
 * Workers) and shared by all providers, so a provider never opens its own database or reads
 * the clock or the master key itself.
 */
export interface PlatformProviderDeps {
	/** The control store; providers reach a region's database through `store.region(id)`. */
	store: ControlStore;
	/** Envelope encryption for anything secret a provider keeps at rest (the CA key, credentials). */
	secrets: SecretBox;
	clock: Clock;
	/**
	 * The environment the entry was started with (Node `process.env`, Workers bindings), read
	 * only when a provider is created, to resolve settings such as `apiKey: { env: "NAME" }`.
	 */
	env?: Readonly<Record<string, string | undefined>>;
	/**
	 * The other configured providers, by kind and name, for providers that use one (the ACME
	 * issuer reaches its DNS-01 provider through it). Resolve lazily, when the provider is used:
	 * providers are created in configuration order, so a later one may not exist yet at create.
	 */
	providers?: ProviderAccess;
}

/** Looks up a configured provider; throws unless `name` is configured and is of `kind`. */
export interface ProviderAccess {
	get<K extends ProviderKind>(kind: K, name: string): ProviderByKind[K];
}
