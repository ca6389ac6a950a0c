import type { ProviderKind } from "../../db/schema/region/provider-bindings";
import type { SecretBinding } from "./secret-box";

/**
 * The bindings of every encrypted column. Sealing and opening must build the same binding,
 * so every caller (services, jobs, key rotation) takes it from here.
 */
export const SECRET_PURPOSES = {
	certificateKey: "certificate-key",
	providerSettings: "provider-settings",
	internalCaKey: "internal-ca-key",
} as const;

/** The scope of secrets the platform owns in one region (a tenant's scope is its id). */
export function platformScope(regionId: string): string {
	return `platform:${regionId}`;
}

/** `certificates.private_key_ciphertext` */
export function certificateKeyBinding(tenantId: string, certificateId: string): SecretBinding {
	return { scope: tenantId, purpose: SECRET_PURPOSES.certificateKey, ref: certificateId };
}

/** `provider_bindings.settings_ciphertext`: one row per (tenant, kind), so the kind is the ref. */
export function providerSettingsBinding(tenantId: string, kind: ProviderKind): SecretBinding {
	return { scope: tenantId, purpose: SECRET_PURPOSES.providerSettings, ref: kind };
}

/** `internal_ca.private_key_ciphertext` */
export function internalCaKeyBinding(regionId: string, caId: string): SecretBinding {
	return { scope: platformScope(regionId), purpose: SECRET_PURPOSES.internalCaKey, ref: caId };
}
