import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { Platform } from "../../functions/services/context";

/**
 * Writes every root a client needs to trust this deployment's certificates (for the internal
 * CA: one root per region, created here on first start) to one PEM bundle, for `curl --cacert`.
 */
export async function writeTrustBundle(platform: Platform, path: string): Promise<string[]> {
	const roots = new Set<string>();
	for (const name of platform.providers.names("issuer")) {
		const issuer = platform.providers.get("issuer", name);
		for (const region of platform.store.regions()) {
			for (const pem of await issuer.trustAnchors(region.id)) roots.add(pem.trim());
		}
	}
	mkdirSync(dirname(path), { recursive: true });
	writeFileSync(path, [...roots].map((pem) => `${pem}\n`).join(""));
	return [...roots];
}
