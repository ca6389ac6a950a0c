import type { z } from "zod";
import type { PlatformProviderDeps } from "./deps";
import type { Capabilities, ProviderByKind, ProviderKind } from "./types";

/** Everything a provider may need from the running platform, injected by the entry. */
export type ProviderDeps = PlatformProviderDeps;

export interface ProviderFactory<K extends ProviderKind = ProviderKind, S = unknown> {
	kind: K;
	type: string;
	/** zod schema for `settings`; its issues are reported under `$.providers.<name>.settings`. */
	settingsSchema: z.ZodType<S>;
	/** Setting keys holding URLs that must be https:// (loopback excepted). */
	endpointSettings: readonly string[];
	/** Setting keys that name another configured provider, and the kind it must be. */
	providerSettings?: Readonly<Record<string, ProviderKind>>;
	/** `settings` has already been parsed by `settingsSchema` (see build-providers.ts). */
	create(input: {
		name: string;
		settings: S;
		capabilities: Capabilities;
		deps: ProviderDeps;
	}): ProviderByKind[K];
}

/** Maps (kind, type) to a factory. Adding a provider adds one `register` call, not a branch. */
export class ProviderRegistry {
	readonly #factories = new Map<string, ProviderFactory>();

	register<K extends ProviderKind, S>(factory: ProviderFactory<K, S>): this {
		const key = `${factory.kind}:${factory.type}`;
		if (this.#factories.has(key)) throw new Error(`provider ${key} is already registered`);
		this.#factories.set(key, factory as unknown as ProviderFactory);
		return this;
	}

	get<K extends ProviderKind>(kind: K, type: string): ProviderFactory<K> | undefined {
		return this.#factories.get(`${kind}:${type}`) as ProviderFactory<K> | undefined;
	}

	types(kind: ProviderKind): string[] {
		return [...this.#factories.values()].filter((f) => f.kind === kind).map((f) => f.type);
	}
}
