// @peculiar/x509 needs the Reflect polyfill loaded before it.
import "reflect-metadata";
import type { AddressInfo } from "node:net";
import * as tls from "node:tls";
import { createClient } from "@libsql/client";
import * as x509 from "@peculiar/x509";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { internalCa } from "../../db/schema/region/internal-ca";
import { openStore } from "../../db/store";
import { defaultConfig } from "../../functions/config/default-config";
import { configSchema } from "../../functions/config/schema";
import { AppError } from "../../functions/errors";
import {
	buildProviders,
	ProviderBuildError,
	ProviderLookupError,
} from "../../functions/providers/build-providers";
import { createDefaultRegistry } from "../../functions/providers/default-registry";
import type { PlatformProviderDeps } from "../../functions/providers/deps";
import {
	type InternalCaIssuer,
	internalCaFactory,
	internalCaRootPem,
	internalCaSettingsSchema,
} from "../../functions/providers/issuers/internal-ca";
import type { IssuedCertificate } from "../../functions/providers/types";
import { type Clock, systemClock } from "../../functions/runtime";
import { internalCaKeyBinding } from "../../functions/secrets/bindings";
import { createSecretBox } from "../../functions/secrets/envelope";
import { MasterKeyring } from "../../functions/secrets/keyring";
import type { SecretBox } from "../../functions/secrets/secret-box";
import { issuerConformance, parseChain, verifiedPath } from "../conformance/certificate-issuer";
import { createTempStore, type TempStore } from "../helpers/temp-store";

const EU = "eu-central";
const US = "us-east";
const capabilities = { jurisdiction: "regional", customerControlled: false };
const DAY_MS = 24 * 60 * 60 * 1000;

async function newSecretBox(): Promise<SecretBox> {
	const masterKey = crypto.getRandomValues(new Uint8Array(32));
	return createSecretBox(await MasterKeyring.fromKeys([masterKey]));
}

function newIssuer(deps: PlatformProviderDeps, settings: unknown = {}): InternalCaIssuer {
	return internalCaFactory.create({
		name: "internal-ca",
		settings: internalCaSettingsSchema.parse(settings),
		capabilities,
		deps,
	}) as InternalCaIssuer;
}

/** A clock the test moves by hand; whole seconds, because X.509 dates carry no milliseconds. */
function manualClock(start: string): Clock & { set(iso: string | Date): void } {
	let now = new Date(start);
	return {
		now: () => new Date(now),
		set(iso) {
			now = new Date(iso);
		},
	};
}

/** Holds everyone who arrives until `parties` have, or until `open()` is called. */
function barrier(parties: number) {
	let arrived = 0;
	let open = () => {};
	const opened = new Promise<void>((resolve) => {
		open = resolve;
	});
	return {
		arrive: async () => {
			if (++arrived >= parties) open();
			await opened;
		},
		open: () => open(),
	};
}

/** Counts seals, and can hold each one in `beforeSeal` (to line up two racing creators). */
function instrumentedBox(inner: SecretBox, beforeSeal?: () => Promise<void>) {
	let seals = 0;
	const box: SecretBox = {
		async seal(plaintext, binding) {
			seals++;
			await beforeSeal?.();
			return inner.seal(plaintext, binding);
		},
		open: (ciphertext, binding) => inner.open(ciphertext, binding),
		openText: (ciphertext, binding) => inner.openText(ciphertext, binding),
	};
	return { box, seals: () => seals };
}

async function rootRows(temp: TempStore, regionId: string) {
	return temp.store.region(regionId).db.select().from(internalCa);
}

async function anchorsOf(issuer: InternalCaIssuer, regionId: string) {
	return (await issuer.trustAnchors(regionId)).map((pem) => new x509.X509Certificate(pem));
}

issuerConformance("internal CA", async () => {
	const temp = await createTempStore();
	const issuer = newIssuer({
		store: temp.store,
		secrets: await newSecretBox(),
		clock: systemClock,
	});
	return {
		issuer,
		regionId: EU,
		hostnames: ["shop.localhost", "*.shop.localhost"],
		cleanup: async () => temp.close(),
	};
});

describe("internal CA", () => {
	let temp: TempStore;
	let secrets: SecretBox;

	beforeEach(async () => {
		temp = await createTempStore();
		secrets = await newSecretBox();
	});
	afterEach(() => temp.close());

	describe("the region root", () => {
		it("is created once when two nodes race to create it", async () => {
			// A second store on the same files is a second node; each issuer has its own cache.
			const otherNode = await openStore(createClient, temp.locations);
			try {
				// Neither node may store its root until both have generated one: the worst interleaving.
				const race = barrier(2);
				const a = instrumentedBox(secrets, race.arrive);
				const b = instrumentedBox(secrets, race.arrive);
				const nodeA = newIssuer({ store: temp.store, secrets: a.box, clock: systemClock });
				const nodeB = newIssuer({ store: otherNode, secrets: b.box, clock: systemClock });

				const issuing = [
					nodeA.issue({ tenantId: "ten_a", regionId: EU, hostnames: ["a.localhost"] }),
					nodeB.issue({ tenantId: "ten_b", regionId: EU, hostnames: ["b.localhost"] }),
				];
				// Should one node finish without creating a root, nobody is left to wait for.
				for (const p of issuing) p.finally(race.open).catch(() => {});
				const [fromA, fromB] = (await Promise.all(issuing)) as [
					IssuedCertificate,
					IssuedCertificate,
				];

				// The race really happened: both nodes generated a root before either stored one.
				expect(a.seals()).toBe(1);
				expect(b.seals()).toBe(1);
				expect(await rootRows(temp, EU)).toHaveLength(1);
				const [anchorA] = await nodeA.trustAnchors(EU);
				expect(await nodeB.trustAnchors(EU)).toEqual([anchorA]);
				const anchors = await anchorsOf(nodeA, EU);
				await verifiedPath(fromA.chainPem, anchors);
				await verifiedPath(fromB.chainPem, anchors);
			} finally {
				otherNode.close();
			}
		});

		it("is created once for concurrent first calls in one process", async () => {
			const counted = instrumentedBox(secrets);
			const issuer = newIssuer({ store: temp.store, secrets: counted.box, clock: systemClock });

			const issued = await Promise.all(
				["a", "b", "c", "d", "e"].map((t) =>
					issuer.issue({ tenantId: `ten_${t}`, regionId: EU, hostnames: [`${t}.localhost`] }),
				),
			);

			expect(counted.seals()).toBe(1);
			expect(await rootRows(temp, EU)).toHaveLength(1);
			const anchors = await anchorsOf(issuer, EU);
			for (const cert of issued) await verifiedPath(cert.chainPem, anchors);
		});

		it("survives a restart: a new process uses the stored root", async () => {
			const before = await newIssuer({
				store: temp.store,
				secrets,
				clock: systemClock,
			}).trustAnchors(EU);
			const restarted = newIssuer({ store: temp.store, secrets, clock: systemClock });
			const issued = await restarted.issue({
				tenantId: "ten_r",
				regionId: EU,
				hostnames: ["r.localhost"],
			});

			expect(await restarted.trustAnchors(EU)).toEqual(before);
			await verifiedPath(
				issued.chainPem,
				before.map((pem) => new x509.X509Certificate(pem)),
			);
		});

		it("keeps its key sealed: no PEM in the database, and it opens only with its own binding", async () => {
			const issuer = newIssuer({ store: temp.store, secrets, clock: systemClock });
			await issuer.issue({ tenantId: "ten_k", regionId: EU, hostnames: ["k.localhost"] });
			const [row] = await rootRows(temp, EU);
			if (!row) throw new Error("no root row");

			expect(row.privateKeyCiphertext).not.toContain("PRIVATE KEY");
			expect(row.certPem).not.toContain("PRIVATE KEY");

			// With the right binding it opens to the key that signed the root certificate.
			const pkcs8 = await secrets.open(row.privateKeyCiphertext, internalCaKeyBinding(EU, row.id));
			const key = await crypto.subtle.importKey(
				"pkcs8",
				new Uint8Array(pkcs8),
				{ name: "ECDSA", namedCurve: "P-256" },
				false,
				["sign"],
			);
			const message = new TextEncoder().encode("root key check");
			const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, message);
			const root = new x509.X509Certificate(row.certPem);
			const rootKey = await root.publicKey.export({ name: "ECDSA", namedCurve: "P-256" }, [
				"verify",
			]);
			expect(
				await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, rootKey, signature, message),
			).toBe(true);

			const right = internalCaKeyBinding(EU, row.id);
			for (const wrong of [
				{ ...right, scope: `platform:${US}` },
				{ ...right, purpose: "certificate-key" },
				{ ...right, ref: "other" },
			]) {
				await expect(secrets.open(row.privateKeyCiphertext, wrong)).rejects.toThrow(
					/cannot decrypt/,
				);
			}
		});

		it("differs per region: an EU leaf does not verify against the US root", async () => {
			const issuer = newIssuer({ store: temp.store, secrets, clock: systemClock });
			const euLeaf = await issuer.issue({
				tenantId: "ten_eu",
				regionId: EU,
				hostnames: ["eu.localhost"],
			});
			const usLeaf = await issuer.issue({
				tenantId: "ten_us",
				regionId: US,
				hostnames: ["us.localhost"],
			});
			const [euRoot] = await anchorsOf(issuer, EU);
			const [usRoot] = await anchorsOf(issuer, US);
			if (!euRoot || !usRoot) throw new Error("missing root");

			expect(euRoot.subject).toBe(`CN=Castellan Internal CA ${EU}`);
			expect(usRoot.subject).toBe(`CN=Castellan Internal CA ${US}`);
			expect(hex(euRoot.publicKey.rawData)).not.toBe(hex(usRoot.publicKey.rawData));
			await verifiedPath(euLeaf.chainPem, [euRoot]);
			await verifiedPath(usLeaf.chainPem, [usRoot]);
			await expect(verifiedPath(euLeaf.chainPem, [usRoot])).rejects.toThrow(/trust anchor/);
			const [leaf] = parseChain(euLeaf.chainPem);
			expect(await leaf?.verify({ publicKey: usRoot.publicKey, signatureOnly: true })).toBe(false);
			expect(await rootRows(temp, EU)).toHaveLength(1);
			expect(await rootRows(temp, US)).toHaveLength(1);
		});

		it("is what internalCaRootPem returns, created by it when the region has none", async () => {
			const deps = { store: temp.store, secrets, clock: systemClock };
			expect(await rootRows(temp, US)).toHaveLength(0);

			const pem = await internalCaRootPem(deps, US);

			expect(pem).toMatch(/^-----BEGIN CERTIFICATE-----/);
			expect(await rootRows(temp, US)).toHaveLength(1);
			expect(await newIssuer(deps).trustAnchors(US)).toEqual([pem]);
		});

		it("refuses a region the store does not know", async () => {
			const issuer = newIssuer({ store: temp.store, secrets, clock: systemClock });
			await expect(
				issuer.issue({ tenantId: "ten_x", regionId: "mars-1", hostnames: ["x.localhost"] }),
			).rejects.toThrow(/unknown region "mars-1"/);
		});
	});

	describe("certificate profile", () => {
		const start = "2031-03-04T05:06:07Z";

		it("root: P-256, 10 years, CA with path length 0, signs certificates and CRLs only", async () => {
			const issuer = newIssuer({ store: temp.store, secrets, clock: manualClock(start) });
			const [root] = await anchorsOf(issuer, EU);
			if (!root) throw new Error("no root");

			expect(root.publicKey.algorithm).toMatchObject({ name: "ECDSA", namedCurve: "P-256" });
			expect(await root.isSelfSigned()).toBe(true);
			expect(root.notBefore.toISOString()).toBe("2031-03-04T05:01:07.000Z");
			expect(root.notAfter.toISOString()).toBe("2041-03-04T05:06:07.000Z");
			const constraints = root.getExtension(x509.BasicConstraintsExtension);
			expect(constraints).toMatchObject({ ca: true, pathLength: 0, critical: true });
			const usage = root.getExtension(x509.KeyUsagesExtension);
			expect(usage?.critical).toBe(true);
			expect(usage?.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
			expect(root.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId).toMatch(
				/^[0-9a-f]{40}$/,
			);
		});

		it("leaf: named by its first hostname, server auth only, linked to the root, back-dated 5 minutes, 90 days", async () => {
			const issuer = newIssuer({ store: temp.store, secrets, clock: manualClock(start) });
			const issued = await issuer.issue({
				tenantId: "ten_p",
				regionId: EU,
				hostnames: ["shop.localhost", "www.shop.localhost"],
			});
			const [leaf, root, ...rest] = parseChain(issued.chainPem);
			if (!leaf || !root) throw new Error("short chain");

			expect(rest).toEqual([]);
			expect(root.toString("pem")).toBe((await issuer.trustAnchors(EU))[0]?.trim());
			expect(leaf.subject).toBe("CN=shop.localhost");
			expect(leaf.issuer).toBe(root.subject);
			expect(leaf.notBefore.toISOString()).toBe("2031-03-04T05:01:07.000Z");
			expect(leaf.notAfter.toISOString()).toBe("2031-06-02T05:06:07.000Z");
			expect(leaf.getExtension(x509.BasicConstraintsExtension)?.ca).toBe(false);
			expect(leaf.getExtension(x509.KeyUsagesExtension)?.usages).toBe(
				x509.KeyUsageFlags.digitalSignature,
			);
			expect(leaf.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([
				x509.ExtendedKeyUsage.serverAuth,
			]);
			expect(leaf.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId).toBe(
				root.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId,
			);
			// 16 bytes, positive: the first byte has its top bit clear.
			expect(issued.serial).toMatch(/^[0-7][0-9a-f]{31}$/);
			expect(issued.privateKeyPem).toMatch(
				/^-----BEGIN PRIVATE KEY-----\n[\s\S]+-----END PRIVATE KEY-----\n$/,
			);
		});

		it("honours the leafDays setting", async () => {
			const issuer = newIssuer(
				{ store: temp.store, secrets, clock: manualClock(start) },
				{ leafDays: 30 },
			);
			const issued = await issuer.issue({
				tenantId: "ten_d",
				regionId: EU,
				hostnames: ["d.localhost"],
			});
			expect(issued.notAfter.getTime() - new Date(start).getTime()).toBe(30 * DAY_MS);
		});

		it("never lets a leaf outlive the root, and stops issuing once the root has expired", async () => {
			const clock = manualClock(start);
			const issuer = newIssuer({ store: temp.store, secrets, clock });
			const [root] = await anchorsOf(issuer, EU);
			if (!root) throw new Error("no root");

			clock.set(new Date(root.notAfter.getTime() - 10 * DAY_MS));
			const late = await issuer.issue({
				tenantId: "ten_l",
				regionId: EU,
				hostnames: ["l.localhost"],
			});
			expect(late.notAfter.getTime()).toBe(root.notAfter.getTime());

			clock.set(root.notAfter);
			await expect(
				issuer.issue({ tenantId: "ten_l", regionId: EU, hostnames: ["l.localhost"] }),
			).rejects.toThrow(/internal CA root of region "eu-central" expired/);
		});

		it("puts a hostname too long for a common name only in a critical SAN", async () => {
			const issuer = newIssuer({ store: temp.store, secrets, clock: systemClock });
			const long = `${"a".repeat(60)}.localhost`;
			const issued = await issuer.issue({ tenantId: "ten_n", regionId: EU, hostnames: [long] });
			const [leaf] = parseChain(issued.chainPem);

			expect(leaf?.subject).toBe("");
			const san = leaf?.getExtension(x509.SubjectAlternativeNameExtension);
			expect(san?.critical).toBe(true);
			expect(san?.names.items.map((n) => n.value)).toEqual([long]);
		});
	});

	describe("hostnames", () => {
		it.each([
			["Shop.localhost", /lower-case DNS name/],
			["shop.localhost.", /lower-case DNS name/],
			["shop..localhost", /lower-case DNS name/],
			["-shop.localhost", /lower-case DNS name/],
			["shop_1.localhost", /lower-case DNS name/],
			["*.*.shop.localhost", /lower-case DNS name/],
			["shop.*.localhost", /lower-case DNS name/],
			["*", /lower-case DNS name/],
			["*.", /1 to 253 characters/],
			["127.0.0.1", /IP addresses are not DNS names/],
			[`${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(63)}`, /1 to 253/],
		])("refuses %s before creating anything", async (hostname, reason) => {
			const issuer = newIssuer({ store: temp.store, secrets, clock: systemClock });
			const issuing = issuer.issue({ tenantId: "ten_h", regionId: EU, hostnames: [hostname] });

			await expect(issuing).rejects.toBeInstanceOf(AppError);
			await expect(issuing).rejects.toMatchObject({ code: "bad_request", status: 400 });
			await expect(issuing).rejects.toThrow(`invalid hostname ${JSON.stringify(hostname)}`);
			await expect(issuing).rejects.toThrow(reason);
			expect(await rootRows(temp, EU)).toHaveLength(0);
		});

		it("refuses an empty list, and certifies duplicates once", async () => {
			const issuer = newIssuer({ store: temp.store, secrets, clock: systemClock });
			await expect(
				issuer.issue({ tenantId: "ten_e", regionId: EU, hostnames: [] }),
			).rejects.toThrow(/at least one hostname/);
			const issued = await issuer.issue({
				tenantId: "ten_e",
				regionId: EU,
				hostnames: ["e.localhost", "*.e.localhost", "e.localhost"],
			});
			const san = parseChain(issued.chainPem)[0]?.getExtension(
				x509.SubjectAlternativeNameExtension,
			);
			expect(san?.names.items.map((n) => n.value)).toEqual(["e.localhost", "*.e.localhost"]);
		});
	});

	describe("a real TLS handshake", () => {
		const hostnames = ["shop.localhost", "*.shop.localhost"];

		it("succeeds for the certified names against the region root, fails for others and other roots", async () => {
			const issuer = newIssuer({ store: temp.store, secrets, clock: systemClock });
			const issued = await issuer.issue({ tenantId: "ten_t", regionId: EU, hostnames });
			const euRoot = await issuer.trustAnchors(EU);
			const usRoot = await issuer.trustAnchors(US);
			const server = { key: issued.privateKeyPem, cert: issued.chainPem };

			expect(await tlsHandshake({ ...server, servername: "shop.localhost", ca: euRoot })).toBe(
				"ok",
			);
			expect(await tlsHandshake({ ...server, servername: "api.shop.localhost", ca: euRoot })).toBe(
				"ok",
			);
			expect(await tlsHandshake({ ...server, servername: "other.localhost", ca: euRoot })).toBe(
				"ERR_TLS_CERT_ALTNAME_INVALID",
			);
			// The chain's EU root is not among the client's anchors, so the client stops there.
			expect(await tlsHandshake({ ...server, servername: "shop.localhost", ca: usRoot })).toBe(
				"SELF_SIGNED_CERT_IN_CHAIN",
			);
		});
	});

	describe("wiring through the default registry and buildProviders", () => {
		function declarations() {
			return configSchema.parse(defaultConfig(temp.dir)).providers;
		}

		it("builds every default provider and hands out each by kind and name", async () => {
			const deps = { store: temp.store, secrets, clock: systemClock };
			const providers = buildProviders(declarations(), createDefaultRegistry(), deps);

			const issued = await providers
				.get("issuer", "internal-ca")
				.issue({ tenantId: "ten_w", regionId: EU, hostnames: ["w.localhost"] });
			await verifiedPath(issued.chainPem, await anchorsOf(newIssuer(deps), EU));
			expect(providers.get("dns", "localhost-dns").capabilities.recordTypes).toContain("A");
			expect(providers.get("relay", "direct").target("http://127.0.0.1:9000")).toBe(
				"http://127.0.0.1:9000",
			);
			expect(providers.get("storage", "regional-store").capabilities.jurisdiction).toBe("regional");
			expect(providers.names("issuer")).toEqual(["internal-ca"]);
			// Built once: the same instance every time, so its caches and state are shared.
			expect(providers.get("dns", "localhost-dns")).toBe(providers.get("dns", "localhost-dns"));
		});

		it("refuses an unknown name and a name of another kind, saying which", () => {
			const deps = { store: temp.store, secrets, clock: systemClock };
			const providers = buildProviders(declarations(), createDefaultRegistry(), deps);

			expect(() => providers.get("dns", "cloudflare")).toThrow(ProviderLookupError);
			expect(() => providers.get("dns", "cloudflare")).toThrow(
				'no provider named "cloudflare" is configured (dns providers: localhost-dns)',
			);
			expect(() => providers.get("dns", "internal-ca")).toThrow(
				'provider "internal-ca" is an issuer provider, not a dns provider',
			);
		});

		it("refuses to build an unknown type or bad settings, naming the field", () => {
			const deps = { store: temp.store, secrets, clock: systemClock };
			const registry = createDefaultRegistry();
			const unknownType = {
				...declarations(),
				edge: { kind: "relay" as const, type: "wireguard", settings: {}, capabilities },
			};
			expect(() => buildProviders(unknownType, registry, deps)).toThrow(ProviderBuildError);
			expect(() => buildProviders(unknownType, registry, deps)).toThrow(
				'$.providers.edge.type: unknown relay provider type "wireguard" (known: direct)',
			);

			const badSettings = declarations();
			const ca = badSettings["internal-ca"];
			if (!ca) throw new Error("the default config has no internal-ca");
			ca.settings = { leafDays: 0 };
			expect(() => buildProviders(badSettings, registry, deps)).toThrow(
				/\$\.providers\["internal-ca"\]\.settings\.leafDays: /,
			);
		});
	});
});

/** One TLS handshake on loopback: "ok", or the client's error code. */
async function tlsHandshake(input: {
	key: string;
	cert: string;
	servername: string;
	ca: string[];
}): Promise<string> {
	const server = tls.createServer({ key: input.key, cert: input.cert });
	server.on("secureConnection", (socket) => socket.end());
	// The client's refusal also surfaces on the server side; it is the client's view we assert.
	server.on("tlsClientError", () => {});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const { port } = server.address() as AddressInfo;
	try {
		return await new Promise<string>((resolve) => {
			const socket = tls.connect({
				host: "127.0.0.1",
				port,
				servername: input.servername,
				ca: input.ca,
			});
			socket.once("secureConnect", () => {
				socket.end();
				resolve("ok");
			});
			socket.once("error", (err: NodeJS.ErrnoException) => {
				socket.destroy();
				resolve(err.code ?? err.message);
			});
		});
	} finally {
		await new Promise((resolve) => server.close(resolve));
	}
}

function hex(buffer: ArrayBuffer): string {
	return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
