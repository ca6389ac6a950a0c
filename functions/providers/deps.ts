import type { ControlStore } from "../../db/store";
import type { Clock } from "../runtime";
import type { SecretBox } from "../secrets/secret-box";

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
}
