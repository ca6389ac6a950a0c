// @peculiar/x509 needs the Reflect polyfill loaded before it.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type {
	CertificateIssuer,
	IssuedCertificate,
	IssueRequest,
} from "../../functions/providers/types";

export interface IssuerConformanceSetup {
	issuer: CertificateIssuer;
	regionId: string;
	/** Names the issuer can certify here (for ACME: names whose DNS-01 the test controls). */
	hostnames: string[];
	/** The issuer's notion of now, when it runs on a fake clock; the real time otherwise. */
	now?: () => Date;
	cleanup?: () => Promise<void>;
}

const P256 = { name: "ECDSA", namedCurve: "P-256" } as const;
const SERVER_AUTH = "1.3.6.1.5.5.7.3.1";

/**
 * What every certificate issuer owes the renewal job and the edge: a chain that verifies to the
 * issuer's trust anchors, for exactly the names asked, valid now, with a P-256 key that matches,
 * and a fresh key and serial on every issuance.
 */
export function issuerConformance(
	name: string,
	setup: () => Promise<IssuerConformanceSetup>,
): void {
	describe(`certificate issuer conformance: ${name}`, () => {
		let ctx: IssuerConformanceSetup;
		let first: IssuedCertificate;
		let second: IssuedCertificate;

		beforeAll(async () => {
			ctx = await setup();
			const request: IssueRequest = {
				tenantId: `ten_conformance_${crypto.randomUUID().slice(0, 8)}`,
				regionId: ctx.regionId,
				hostnames: ctx.hostnames,
			};
			// Issued once up front: real issuers (ACME) are slow, every test reads these two.
			first = await ctx.issuer.issue(request);
			second = await ctx.issuer.issue(request);
		});
		afterAll(async () => {
			await ctx?.cleanup?.();
		});
		const now = () => ctx.now?.() ?? new Date();

		it("returns a chain that verifies up to one of trustAnchors(regionId)", async () => {
			const anchors = (await ctx.issuer.trustAnchors(ctx.regionId)).map(
				(pem) => new x509.X509Certificate(pem),
			);
			expect(anchors.length).toBeGreaterThan(0);

			const path = await verifiedPath(first.chainPem, anchors, now());
			expect(path.length).toBeGreaterThanOrEqual(2);
		});

		it("certifies exactly the requested names, as DNS SANs", () => {
			expect(dnsNames(leafOf(first)).sort()).toEqual([...ctx.hostnames].sort());
		});

		it("is a TLS server certificate, not a CA", () => {
			const leaf = leafOf(first);
			expect(leaf.getExtension(x509.BasicConstraintsExtension)?.ca ?? false).toBe(false);
			const eku = leaf.getExtension(x509.ExtendedKeyUsageExtension);
			expect(eku?.usages).toContain(SERVER_AUTH);
		});

		it("is valid now, and reports the leaf's own serial and dates", () => {
			const leaf = leafOf(first);
			const at = now();
			expect(leaf.notBefore.getTime()).toBeLessThanOrEqual(at.getTime());
			expect(leaf.notAfter.getTime()).toBeGreaterThan(at.getTime());
			expect(first.notBefore.getTime()).toBe(leaf.notBefore.getTime());
			expect(first.notAfter.getTime()).toBe(leaf.notAfter.getTime());
			expect(first.serial.toLowerCase()).toBe(leaf.serialNumber.toLowerCase());
		});

		it("returns an ECDSA P-256 PKCS#8 key that matches the leaf's public key", async () => {
			const leaf = leafOf(first);
			expect(leaf.publicKey.algorithm).toMatchObject(P256);
			expect(first.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
			const privateKey = await importPrivateKey(first.privateKeyPem);
			const message = new TextEncoder().encode(`conformance ${crypto.randomUUID()}`);
			const signature = await sign(privateKey, message);

			expect(await verify(leaf, signature, message)).toBe(true);
			// The check has teeth: another certificate's key does not verify against this leaf.
			expect(await verify(leafOf(second), signature, message)).toBe(false);
		});

		it("issues a fresh key and serial each time (renewal)", async () => {
			const [a, b] = [leafOf(first), leafOf(second)];
			expect(b.serialNumber).not.toBe(a.serialNumber);
			expect(second.privateKeyPem).not.toBe(first.privateKeyPem);
			expect(hex(b.publicKey.rawData)).not.toBe(hex(a.publicKey.rawData));
			await verifiedPath(
				second.chainPem,
				(await ctx.issuer.trustAnchors(ctx.regionId)).map((pem) => new x509.X509Certificate(pem)),
				now(),
			);
		});
	});
}

/** The certificates of a PEM chain, leaf first. */
export function parseChain(chainPem: string): x509.X509Certificate[] {
	return x509.PemConverter.decode(chainPem).map((der) => new x509.X509Certificate(der));
}

function leafOf(issued: IssuedCertificate): x509.X509Certificate {
	const [leaf] = parseChain(issued.chainPem);
	if (!leaf) throw new Error("the chain is empty");
	return leaf;
}

/**
 * Walks from the leaf through the chain's certificates to an anchor, checking each signature
 * and validity window; throws when the walk does not end at one of `anchors`.
 */
export async function verifiedPath(
	chainPem: string,
	anchors: x509.X509Certificate[],
	at: Date = new Date(),
): Promise<x509.X509Certificate[]> {
	const [leaf, ...intermediates] = parseChain(chainPem);
	if (!leaf) throw new Error("the chain is empty");
	const builder = new x509.X509ChainBuilder({ certificates: [...intermediates, ...anchors] });
	const path = [...(await builder.build(leaf))];
	const top = path[path.length - 1];
	const anchorPrints = await Promise.all(anchors.map(async (a) => hex(await a.getThumbprint())));
	if (!top || !anchorPrints.includes(hex(await top.getThumbprint()))) {
		throw new Error(`the chain of ${leaf.subject} does not lead to a trust anchor`);
	}
	for (const [i, cert] of path.entries()) {
		const issuer = path[i + 1] ?? cert;
		if (!(await cert.verify({ publicKey: issuer.publicKey, date: at }))) {
			throw new Error(`${cert.subject}: bad signature from ${issuer.subject} or outside its dates`);
		}
	}
	return path;
}

export function dnsNames(cert: x509.X509Certificate): string[] {
	const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
	return (san?.names.items ?? []).filter((n) => n.type === "dns").map((n) => n.value);
}

/** A PKCS#8 PEM P-256 key, for signing. */
export async function importPrivateKey(pem: string): Promise<CryptoKey> {
	return crypto.subtle.importKey("pkcs8", x509.PemConverter.decodeFirst(pem), P256, false, [
		"sign",
	]);
}

function sign(key: CryptoKey, message: Uint8Array<ArrayBuffer>): Promise<ArrayBuffer> {
	return crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, message);
}

async function verify(
	cert: x509.X509Certificate,
	signature: ArrayBuffer,
	message: Uint8Array<ArrayBuffer>,
): Promise<boolean> {
	const publicKey = await cert.publicKey.export(P256, ["verify"]);
	return crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, publicKey, signature, message);
}

function hex(buffer: ArrayBuffer): string {
	return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
