// @peculiar/x509 needs the Reflect polyfill loaded before it.
import "reflect-metadata";
import { createPrivateKey } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { beforeAll, describe, expect, it } from "vitest";
import { AppError } from "../../functions/errors";
import type { Violation } from "../../functions/policy/violations";
import {
	type ByoCertificateInput,
	nameCovers,
	validateByoCertificate,
} from "../../functions/providers/issuers/byo";
import { parseChain } from "../conformance/certificate-issuer";

const DAY_MS = 24 * 60 * 60 * 1000;
const NOW = new Date("2031-05-01T12:00:00Z");
const P256: EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };
const P384: EcKeyGenParams = { name: "ECDSA", namedCurve: "P-384" };
const RSA = (bits: number): RsaHashedKeyGenParams => ({
	name: "RSASSA-PKCS1-v1_5",
	modulusLength: bits,
	publicExponent: new Uint8Array([1, 0, 1]),
	hash: "SHA-256",
});

type KeyParams = EcKeyGenParams | RsaHashedKeyGenParams;

interface Issued {
	cert: x509.X509Certificate;
	pem: string;
	keys: CryptoKeyPair;
	params: KeyParams;
}

function signingAlgorithm(params: KeyParams): Algorithm | EcdsaParams {
	if (params.name === "ECDSA") {
		const curve = (params as EcKeyGenParams).namedCurve;
		return { name: "ECDSA", hash: curve === "P-384" ? "SHA-384" : "SHA-256" };
	}
	return params;
}

async function keyPair(params: KeyParams): Promise<CryptoKeyPair> {
	return (await crypto.subtle.generateKey(params, true, ["sign", "verify"])) as CryptoKeyPair;
}

async function ca(
	name: string,
	options: { issuer?: Issued; params?: KeyParams; notAfter?: Date } = {},
): Promise<Issued> {
	const params = options.params ?? P256;
	const keys = await keyPair(params);
	const extensions = [
		new x509.BasicConstraintsExtension(true, undefined, true),
		new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
	];
	const validity = {
		notBefore: new Date(NOW.getTime() - 365 * DAY_MS),
		notAfter: options.notAfter ?? new Date(NOW.getTime() + 3650 * DAY_MS),
	};
	const cert = options.issuer
		? await x509.X509CertificateGenerator.create({
				serialNumber: randomSerial(),
				subject: `CN=${name}`,
				issuer: options.issuer.cert.subject,
				publicKey: keys.publicKey,
				signingKey: options.issuer.keys.privateKey,
				signingAlgorithm: signingAlgorithm(options.issuer.params),
				extensions,
				...validity,
			})
		: await x509.X509CertificateGenerator.createSelfSigned({
				serialNumber: randomSerial(),
				name: `CN=${name}`,
				keys,
				signingAlgorithm: signingAlgorithm(params),
				extensions,
				...validity,
			});
	return { cert, pem: cert.toString("pem"), keys, params };
}

async function leaf(
	issuer: Issued,
	options: {
		names?: string[];
		params?: KeyParams;
		notBefore?: Date;
		notAfter?: Date;
		serverAuth?: boolean;
	} = {},
): Promise<Issued> {
	const params = options.params ?? P256;
	const keys = await keyPair(params);
	const names = options.names ?? ["shop.example.com", "*.shop.example.com"];
	const cert = await x509.X509CertificateGenerator.create({
		serialNumber: randomSerial(),
		subject: `CN=${names[0]}`,
		issuer: issuer.cert.subject,
		notBefore: options.notBefore ?? new Date(NOW.getTime() - DAY_MS),
		notAfter: options.notAfter ?? new Date(NOW.getTime() + 90 * DAY_MS),
		publicKey: keys.publicKey,
		signingKey: issuer.keys.privateKey,
		signingAlgorithm: signingAlgorithm(issuer.params),
		extensions: [
			new x509.BasicConstraintsExtension(false, undefined, true),
			new x509.ExtendedKeyUsageExtension([
				options.serverAuth === false
					? x509.ExtendedKeyUsage.clientAuth
					: x509.ExtendedKeyUsage.serverAuth,
			]),
			new x509.SubjectAlternativeNameExtension(
				names.map((value) => ({ type: "dns" as const, value })),
			),
		],
	});
	return { cert, pem: cert.toString("pem"), keys, params };
}

async function pkcs8Pem(keys: CryptoKeyPair): Promise<string> {
	const der = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
	return x509.PemConverter.encode(der, "PRIVATE KEY");
}

function randomSerial(): string {
	const bytes = crypto.getRandomValues(new Uint8Array(8));
	bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
	return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function chain(...certs: Issued[]): string {
	return `${certs.map((c) => c.pem).join("\n")}\n`;
}

/** The violations of a refusal; fails the test when the call does not refuse with them. */
async function refusal(input: ByoCertificateInput): Promise<Violation[]> {
	const error = await validateByoCertificate(input).then(
		() => undefined,
		(err: unknown) => err,
	);
	expect(error).toBeInstanceOf(AppError);
	expect(error).toMatchObject({ code: "validation_failed", status: 400 });
	return (error as AppError).violations ?? [];
}

describe("validateByoCertificate", () => {
	let root: Issued;
	let intermediate: Issued;
	let good: Issued;
	let goodKeyPem: string;
	let base: ByoCertificateInput;

	beforeAll(async () => {
		root = await ca("Example Root");
		intermediate = await ca("Example Intermediate", { issuer: root });
		good = await leaf(intermediate);
		goodKeyPem = await pkcs8Pem(good.keys);
		base = {
			chainPem: chain(good, intermediate, root),
			privateKeyPem: goodKeyPem,
			hostname: "shop.example.com",
			now: NOW,
		};
	});

	describe("accepts", () => {
		it("a complete chain whose key matches, for a covered name, with the leaf's serial and dates", async () => {
			const result = await validateByoCertificate(base);

			expect(result.serial).toBe(good.cert.serialNumber);
			expect(result.notBefore.getTime()).toBe(good.cert.notBefore.getTime());
			expect(result.notAfter.getTime()).toBe(good.cert.notAfter.getTime());
			expect(parseChain(result.chainPem).map((c) => c.subject)).toEqual([
				"CN=shop.example.com",
				"CN=Example Intermediate",
				"CN=Example Root",
			]);
			expect(result.privateKeyPem).toBe(`${goodKeyPem}\n`);
		});

		it("a chain given in any order, returned leaf first", async () => {
			const result = await validateByoCertificate({
				...base,
				chainPem: chain(root, good, intermediate),
			});
			expect(parseChain(result.chainPem).map((c) => c.subject)).toEqual([
				"CN=shop.example.com",
				"CN=Example Intermediate",
				"CN=Example Root",
			]);
		});

		it("a chain without its root when the root is among trustedRootsPem", async () => {
			const result = await validateByoCertificate({
				...base,
				chainPem: chain(good, intermediate),
				trustedRootsPem: root.pem,
			});
			expect(parseChain(result.chainPem)).toHaveLength(2);
		});

		it("a name one label under a wildcard SAN", async () => {
			await expect(
				validateByoCertificate({ ...base, hostname: "api.shop.example.com" }),
			).resolves.toMatchObject({ serial: good.cert.serialNumber });
		});

		it.each([
			["ECDSA P-384", P384],
			["RSA 2048", RSA(2048)],
		])("a %s key", async (_label, params) => {
			const cert = await leaf(intermediate, { params });
			const result = await validateByoCertificate({
				...base,
				chainPem: chain(cert, intermediate, root),
				privateKeyPem: await pkcs8Pem(cert.keys),
			});
			expect(result.serial).toBe(cert.cert.serialNumber);
		});

		it.each([
			["EC PRIVATE KEY (SEC1)", P256, "sec1"],
			["RSA PRIVATE KEY (PKCS#1)", RSA(2048), "pkcs1"],
		] as const)("a %s key, converted to PKCS#8", async (_label, params, type) => {
			const cert = await leaf(intermediate, { params });
			const der = new Uint8Array(await crypto.subtle.exportKey("pkcs8", cert.keys.privateKey));
			const legacyPem = createPrivateKey({ key: Buffer.from(der), format: "der", type: "pkcs8" })
				.export({ format: "pem", type })
				.toString();
			expect(legacyPem).toMatch(type === "sec1" ? /EC PRIVATE KEY/ : /RSA PRIVATE KEY/);

			const result = await validateByoCertificate({
				...base,
				chainPem: chain(cert, intermediate, root),
				privateKeyPem: legacyPem,
			});

			expect(result.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
			// The conversion is exact: the same PKCS#8 bytes WebCrypto exported (as OpenSSL re-encodes them).
			const reencoded = createPrivateKey(legacyPem).export({ format: "der", type: "pkcs8" });
			expect(x509.PemConverter.decodeFirst(result.privateKeyPem)).toEqual(
				new Uint8Array(reencoded).buffer,
			);
		});
	});

	describe("refuses", () => {
		it("a key that is not the leaf's", async () => {
			const other = await keyPair(P256);
			const violations = await refusal({ ...base, privateKeyPem: await pkcs8Pem(other) });
			expect(violations).toEqual([
				{
					path: "$.privateKeyPem",
					rule: 'does not match the public key of the certificate for "CN=shop.example.com"',
				},
			]);
		});

		it("a key of another curve than the leaf's", async () => {
			const other = await keyPair(P384);
			const violations = await refusal({ ...base, privateKeyPem: await pkcs8Pem(other) });
			expect(violations.map((v) => v.path)).toEqual(["$.privateKeyPem"]);
			expect(violations[0]?.rule).toMatch(/does not match the public key/);
		});

		it("a chain missing its intermediate, naming the certificate left unsigned", async () => {
			const violations = await refusal({ ...base, chainPem: chain(good, root) });
			expect(violations).toContainEqual({
				path: "$.chainPem",
				rule: 'chain is incomplete: "CN=shop.example.com" is not signed by any certificate given',
			});
		});

		it("a chain that stops at an intermediate when its root is not trusted", async () => {
			const violations = await refusal({ ...base, chainPem: chain(good, intermediate) });
			expect(violations).toEqual([
				{
					path: "$.chainPem",
					rule: 'chain is incomplete: "CN=Example Intermediate" is not signed by any certificate given',
				},
			]);
			// Another root in trustedRootsPem does not help either.
			const otherRoot = await ca("Other Root");
			const again = await refusal({
				...base,
				chainPem: chain(good, intermediate),
				trustedRootsPem: otherRoot.pem,
			});
			expect(again.map((v) => v.rule)).toEqual([
				'chain is incomplete: "CN=Example Intermediate" is not signed by any certificate given',
			]);
		});

		it("a certificate that is not part of the leaf's chain", async () => {
			const stranger = await ca("Unrelated Root");
			const violations = await refusal({
				...base,
				chainPem: chain(good, intermediate, root, stranger),
			});
			expect(violations).toEqual([
				{
					path: "$.chainPem",
					rule: '"CN=Unrelated Root" is not part of the chain of "CN=shop.example.com"',
				},
			]);
		});

		it("a self-signed certificate alone", async () => {
			const violations = await refusal({
				...base,
				chainPem: chain(root),
				privateKeyPem: await pkcs8Pem(root.keys),
			});
			expect(violations.map((v) => v.rule)).toContain(
				'"CN=Example Root" is self-signed: bring a certificate issued by a CA',
			);
		});

		it.each([
			["another name", "shop.example.org"],
			["the wildcard's own base one label up", "example.com"],
			["two labels under the wildcard", "a.b.shop.example.com"],
		])("a hostname the SANs do not cover: %s", async (_label, hostname) => {
			const violations = await refusal({ ...base, hostname });
			expect(violations).toEqual([
				{
					path: "$.chainPem",
					rule: `the certificate's DNS names (shop.example.com, *.shop.example.com) do not cover ${hostname}`,
				},
			]);
		});

		it("an expired certificate, saying when it expired", async () => {
			const expired = await leaf(intermediate, {
				notBefore: new Date(NOW.getTime() - 100 * DAY_MS),
				notAfter: new Date(NOW.getTime() - DAY_MS),
			});
			const violations = await refusal({
				...base,
				chainPem: chain(expired, intermediate, root),
				privateKeyPem: await pkcs8Pem(expired.keys),
			});
			expect(violations).toEqual([
				{
					path: "$.chainPem",
					rule: `"CN=shop.example.com" expired at ${expired.cert.notAfter.toISOString()}`,
				},
			]);
		});

		it("a certificate expiring in 3 days, saying it is within 7 days", async () => {
			const expiring = await leaf(intermediate, { notAfter: new Date(NOW.getTime() + 3 * DAY_MS) });
			const violations = await refusal({
				...base,
				chainPem: chain(expiring, intermediate, root),
				privateKeyPem: await pkcs8Pem(expiring.keys),
			});
			expect(violations).toEqual([
				{
					path: "$.chainPem",
					rule: `"CN=shop.example.com" expires at ${expiring.cert.notAfter.toISOString()}, within 7 days: bring one valid for longer`,
				},
			]);
		});

		it("accepts one expiring in 8 days: the limit is 7", async () => {
			const later = await leaf(intermediate, { notAfter: new Date(NOW.getTime() + 8 * DAY_MS) });
			await expect(
				validateByoCertificate({
					...base,
					chainPem: chain(later, intermediate, root),
					privateKeyPem: await pkcs8Pem(later.keys),
				}),
			).resolves.toBeDefined();
		});

		it("a certificate not valid yet", async () => {
			const future = await leaf(intermediate, { notBefore: new Date(NOW.getTime() + DAY_MS) });
			const violations = await refusal({
				...base,
				chainPem: chain(future, intermediate, root),
				privateKeyPem: await pkcs8Pem(future.keys),
			});
			expect(violations.map((v) => v.rule)).toEqual([
				`"CN=shop.example.com" is not valid yet: valid from ${future.cert.notBefore.toISOString()}`,
			]);
		});

		it("an expired intermediate", async () => {
			const oldIntermediate = await ca("Old Intermediate", {
				issuer: root,
				notAfter: new Date(NOW.getTime() - DAY_MS),
			});
			const cert = await leaf(oldIntermediate);
			const violations = await refusal({
				...base,
				chainPem: chain(cert, oldIntermediate, root),
				privateKeyPem: await pkcs8Pem(cert.keys),
			});
			expect(violations.map((v) => v.rule)).toEqual([
				`"CN=Old Intermediate" in the chain expired at ${oldIntermediate.cert.notAfter.toISOString()}`,
			]);
		});

		it("a certificate not for TLS servers", async () => {
			const client = await leaf(intermediate, { serverAuth: false });
			const violations = await refusal({
				...base,
				chainPem: chain(client, intermediate, root),
				privateKeyPem: await pkcs8Pem(client.keys),
			});
			expect(violations.map((v) => v.rule)).toEqual([
				'"CN=shop.example.com" is not for TLS servers (its extended key usage lacks serverAuth)',
			]);
		});

		it("garbage in both fields, reporting each", async () => {
			const violations = await refusal({
				...base,
				chainPem: "this is not a certificate",
				privateKeyPem: "nor is this a key",
			});
			expect(violations).toEqual([
				{
					path: "$.chainPem",
					rule: "is not PEM: expected one or more -----BEGIN CERTIFICATE----- blocks",
				},
				{
					path: "$.privateKeyPem",
					rule: "is not PEM: expected one -----BEGIN PRIVATE KEY----- block",
				},
			]);
		});

		it("a PEM block that does not hold a certificate", async () => {
			const broken = "-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n";
			const violations = await refusal({ ...base, chainPem: `${good.pem}\n${broken}` });
			expect(violations).toEqual([
				{ path: "$.chainPem", rule: "certificate 2 is not a valid X.509 certificate" },
			]);
		});

		it("a private key pasted into the chain", async () => {
			const violations = await refusal({ ...base, chainPem: `${base.chainPem}${goodKeyPem}\n` });
			expect(violations).toEqual([
				{ path: "$.chainPem", rule: "may hold only CERTIFICATE blocks, found PRIVATE KEY" },
			]);
		});

		it("an encrypted key", async () => {
			const encrypted = createPrivateKey(goodKeyPem)
				.export({ format: "pem", type: "pkcs8", cipher: "aes-256-cbc", passphrase: "secret" })
				.toString();
			const violations = await refusal({ ...base, privateKeyPem: encrypted });
			expect(violations).toEqual([
				{ path: "$.privateKeyPem", rule: "is encrypted: upload the key without a passphrase" },
			]);
		});

		it("an RSA key under 2048 bits", async () => {
			const weak = await keyPair(RSA(1024));
			const violations = await refusal({ ...base, privateKeyPem: await pkcs8Pem(weak) });
			expect(violations).toEqual([
				{ path: "$.privateKeyPem", rule: "is an RSA key of 1024 bits, at least 2048 are required" },
			]);
		});

		it.each([
			["P-521", { name: "ECDSA", namedCurve: "P-521" }, "is an ECDSA key on an unsupported curve"],
			["Ed25519", { name: "Ed25519" }, "is a key of an unsupported type"],
		])("a %s key", async (_label, params, rule) => {
			const keys = (await crypto.subtle.generateKey(params, true, [
				"sign",
				"verify",
			])) as CryptoKeyPair;
			const violations = await refusal({ ...base, privateKeyPem: await pkcs8Pem(keys) });
			expect(violations).toEqual([
				{
					path: "$.privateKeyPem",
					rule: `${rule} (supported: ECDSA P-256 or P-384, RSA 2048 bits or more)`,
				},
			]);
		});

		it("an EC PRIVATE KEY that does not name its curve", async () => {
			// SEQUENCE { INTEGER 1, OCTET STRING (32 bytes) }: no parameters field.
			const der = new Uint8Array([0x30, 0x25, 0x02, 0x01, 0x01, 0x04, 0x20, ...new Uint8Array(32)]);
			const pem = x509.PemConverter.encode(der, "EC PRIVATE KEY");
			const violations = await refusal({ ...base, privateKeyPem: pem });
			expect(violations).toEqual([
				{
					path: "$.privateKeyPem",
					rule: "is not a valid EC PRIVATE KEY: the key does not name its curve; convert it with `openssl pkcs8 -topk8 -nocrypt -in key.pem`",
				},
			]);
		});

		it("several problems at once, each with its field", async () => {
			const expiring = await leaf(intermediate, { notAfter: new Date(NOW.getTime() + 3 * DAY_MS) });
			const violations = await refusal({
				...base,
				chainPem: chain(expiring, root),
				privateKeyPem: goodKeyPem,
				hostname: "other.example.com",
			});
			expect(violations.map((v) => v.path).sort()).toEqual([
				"$.chainPem",
				"$.chainPem",
				"$.chainPem",
				"$.chainPem",
				"$.privateKeyPem",
			]);
			const rules = violations.map((v) => v.rule).join("\n");
			expect(rules).toMatch(/chain is incomplete/);
			expect(rules).toMatch(/is not part of the chain/);
			expect(rules).toMatch(/do not cover other\.example\.com/);
			expect(rules).toMatch(/within 7 days/);
			expect(rules).toMatch(/does not match the public key/);
		});
	});
});

describe("nameCovers", () => {
	it.each([
		["shop.example.com", "shop.example.com", true],
		["Shop.Example.com", "shop.example.COM", true],
		["*.example.com", "shop.example.com", true],
		["*.example.com", "example.com", false],
		["*.example.com", "a.shop.example.com", false],
		["*.example.com", "*.example.com", true],
		["*.example.com", "*.shop.example.com", false],
		["shop.example.com", "api.shop.example.com", false],
	])("%s covers %s: %s", (certName, hostname, covers) => {
		expect(nameCovers(certName, hostname)).toBe(covers);
	});
});
