/**
 * What a ciphertext is bound to. The three parts go into the AES-GCM associated data, so a
 * ciphertext copied to another row, tenant or purpose fails to decrypt.
 */
export interface SecretBinding {
	/** Tenant id, or `platform:<region id>` for platform-owned secrets such as a region's CA key. */
	scope: string;
	/** What the secret is, e.g. "certificate-key", "provider-settings", "internal-ca-key". */
	purpose: string;
	/** The row it belongs to, e.g. the certificate id. */
	ref: string;
}

/** Envelope encryption of secrets at rest (implemented in ./envelope.ts). */
export interface SecretBox {
	seal(plaintext: string | Uint8Array, binding: SecretBinding): Promise<string>;
	open(ciphertext: string, binding: SecretBinding): Promise<Uint8Array>;
	openText(ciphertext: string, binding: SecretBinding): Promise<string>;
}
