import type { RegionHandle } from "../../../db/store";
import { type NodeEdge, startNodeEdge } from "../../../edge/node/start-node-edge";
import { createSecretBox } from "../../../functions/secrets/envelope";
import { MasterKeyring } from "../../../functions/secrets/keyring";
import type { SecretBox } from "../../../functions/secrets/secret-box";
import { createTempStore, type TempStore } from "../../helpers/temp-store";
import { seedInstance, seedRoute, seedTenant, type TlsMaterial, uniqueId } from "./seed";
import { createTestCa } from "./test-certificates";
import { startTestOrigin, type TestOrigin } from "./test-origins";

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

export interface SingleTenantEdge {
	fx: EdgeFixture;
	origin: TestOrigin;
	edge: NodeEdge;
	/** The tenant's hostname, e.g. `stream-3f9c....example.net`. */
	name: string;
	close(): Promise<void>;
}

/** One EU tenant with one origin behind a running Node edge on ephemeral ports. */
export async function startSingleTenantEdge(
	prefix: string,
	originName: string,
): Promise<SingleTenantEdge> {
	const fx = await createEdgeFixture();
	const origin = await startTestOrigin(originName);
	const tenantId = await seedTenant(fx.eu);
	await seedInstance(fx.eu, { url: origin.url });
	const name = `${uniqueId(prefix).replace(/_/g, "-")}.example.net`;
	await seedRoute(fx.eu, fx, { hostname: name, tenantId });
	const edge = await startNodeEdge({
		store: fx.temp.store,
		secrets: fx.secrets,
		httpsPort: 0,
		httpPort: 0,
		host: "127.0.0.1",
	});
	return {
		fx,
		origin,
		edge,
		name,
		async close() {
			await edge.close();
			await origin.close();
			fx.close();
		},
	};
}
