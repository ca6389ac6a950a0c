import { formatViolation, jsonPath, zodViolations } from "../policy/violations";
import type { PlatformProviderDeps, ProviderAccess } from "./deps";
import type { ProviderRegistry } from "./registry";
import type { Capabilities, ProviderByKind, ProviderKind } from "./types";

/** One entry of the config's `providers` record (what `providerSchema` in config/schema.ts parses to). */
export interface ProviderDeclaration {
	kind: ProviderKind;
	type: string;
	settings?: unknown;
	capabilities: Capabilities;
}

/** The providers of a running platform, by configured name; each was created once, at start. */
export interface ProviderLookup extends ProviderAccess {
	/** The provider configured as `name`; throws unless it exists and is of `kind`. */
	get<K extends ProviderKind>(kind: K, name: string): ProviderByKind[K];
	/** Configured names of one kind, in configuration order. */
	names(kind: ProviderKind): string[];
}

/** A provider the configuration declares cannot be created (unknown type, bad settings). */
export class ProviderBuildError extends Error {
	constructor(message: string, options?: { cause?: unknown }) {
		super(message, options);
		this.name = "ProviderBuildError";
	}
}

/** Code asked for a provider name that is not configured, or that is of another kind. */
export class ProviderLookupError extends Error {
	constructor(message: string) {
		super(message);
		this.name = "ProviderLookupError";
	}
}

type AnyProvider = ProviderByKind[ProviderKind];

/**
 * Creates every configured provider once, eagerly, so a bad declaration stops the start rather
 * than the first job that needs it. `checkConfig` reports the same problems earlier, all at once;
 * the checks here keep a config that skipped it from half-starting.
 */
export function buildProviders(
	declarations: Readonly<Record<string, ProviderDeclaration>>,
	registry: ProviderRegistry,
	deps: PlatformProviderDeps,
): ProviderLookup {
	const built = new Map<string, { kind: ProviderKind; provider: AnyProvider }>();
	const names = (kind: ProviderKind) =>
		[...built].filter(([, entry]) => entry.kind === kind).map(([name]) => name);

	// Providers may reach each other (ACME reaches its DNS provider) through this lookup,
	// resolved when used, so the order of the declarations does not matter.
	const lookup: ProviderLookup = {
		get<K extends ProviderKind>(kind: K, name: string): ProviderByKind[K] {
			const entry = built.get(name);
			if (!entry) {
				const configured = names(kind).join(", ") || "none";
				throw new ProviderLookupError(
					`no provider named "${name}" is configured (${kind} providers: ${configured})`,
				);
			}
			if (entry.kind !== kind) {
				throw new ProviderLookupError(
					`provider "${name}" is ${article(entry.kind)} ${entry.kind} provider, not ${article(kind)} ${kind} provider`,
				);
			}
			return entry.provider as ProviderByKind[K];
		},
		names,
	};

	for (const [name, declaration] of Object.entries(declarations)) {
		const { kind, type } = declaration;
		const factory = registry.get(kind, type);
		if (!factory) {
			const known = registry.types(kind).join(", ") || "none";
			throw new ProviderBuildError(
				`${jsonPath(["providers", name, "type"])}: unknown ${kind} provider type "${type}" (known: ${known})`,
			);
		}
		const settings = factory.settingsSchema.safeParse(declaration.settings ?? {});
		if (!settings.success) {
			const problems = zodViolations(settings.error, ["providers", name, "settings"]);
			throw new ProviderBuildError(problems.map(formatViolation).join("; "));
		}
		try {
			const provider = factory.create({
				name,
				settings: settings.data,
				capabilities: declaration.capabilities,
				deps: { ...deps, providers: deps.providers ?? lookup },
			});
			built.set(name, { kind, provider });
		} catch (err) {
			const reason = err instanceof Error ? err.message : String(err);
			throw new ProviderBuildError(
				`${jsonPath(["providers", name])}: cannot create ${kind} provider "${type}": ${reason}`,
				{ cause: err },
			);
		}
	}

	return lookup;
}

function article(kind: ProviderKind): string {
	return kind === "issuer" ? "an" : "a";
}
