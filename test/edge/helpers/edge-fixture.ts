import type { RegionHandle } from "../../../db/store";
import { createSecretBox } from "../../../functions/secrets/envelope";
import { MasterKeyring } from "../../../functions/secrets/keyring";
import type { SecretBox } from "../../../functions/secrets/secret-box";
import { createTempStore, type TempStore } from "../../helpers/temp-store";
import type { TlsMaterial } from "./seed";
import { createTestCa } from "./test-certificates";

export interface EdgeFixture extends TlsMaterial {
	temp: TempStore;
	eu: RegionHandle;
	us: RegionHandle;
	secrets: SecretBox;
	/** PEM of the CA that signed every tenant certificate: what clients trust. */
	caPem: string;
	close(): void;
}

/** A migrated two-region store (eu-central EU, us-east US), a secret box and a test CA. */
export async function createEdgeFixture(): Promise<EdgeFixture> {
	const temp = await createTempStore();
	const keyring = await MasterKeyring.fromKeys([crypto.getRandomValues(new Uint8Array(32))]);
	const ca = await createTestCa();
	return {
		temp,
		eu: temp.store.region("eu-central"),
		us: temp.store.region("us-east"),
		secrets: createSecretBox(keyring),
		ca,
		caPem: ca.certPem,
		close: () => temp.close(),
	};
}
