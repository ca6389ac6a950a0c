import { platformScope } from "./bindings";
import type { SecretBinding } from "./secret-box";

/** Purpose of `acme_accounts.private_key_ciphertext` (kept beside SECRET_PURPOSES in bindings.ts). */
export const ACME_ACCOUNT_KEY_PURPOSE = "acme-account-key";

/** `acme_accounts.private_key_ciphertext`: the account id is `<issuer name>:<region id>`. */
export function acmeAccountKeyBinding(regionId: string, accountId: string): SecretBinding {
	return { scope: platformScope(regionId), purpose: ACME_ACCOUNT_KEY_PURPOSE, ref: accountId };
}
