// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect polyfill first.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { AppError } from "../../errors";
import type { Violation } from "../../policy/violations";

/** A certificate must stay valid at least this long after upload, or renewal has no time to act. */
export const BYO_MIN_REMAINING_DAYS = 7;
const DAY_MS = 24 * 60 * 60 * 1000;
/** A leaf, a few intermediates and perhaps a root: anything longer is not a chain a server sends. */
const MAX_CHAIN_LENGTH = 10;
const MIN_RSA_BITS = 2048;
const SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
const PKCS8_HINT = "convert it with `openssl pkcs8 -topk8 -nocrypt -in key.pem`";

export interface ByoCertificateInput {
	/** The leaf and its intermediates (a root may be included), PEM, in any order. */
	chainPem: string;
	/** The leaf's key: PKCS#8 ("PRIVATE KEY"), or the older "EC PRIVATE KEY" / "RSA PRIVATE KEY". */
	privateKeyPem: string;
	/** The name the certificate must cover (a wildcard SAN covers exactly one more label). */
	hostname: string;
	now: Date;
	/**
	 * Roots a chain may end at without including them (for a publicly trusted certificate, the
	 * platform's bundle of public roots). Without them a chain must end at a self-signed root.
	 */
	trustedRootsPem?: string;
}

export interface ValidatedByoCertificate {
	/** Leaf first, then each issuer in order, PEM. */
	chainPem: string;
	/** The same key as given, as PKCS#8 PEM (what `IssuedCertificate.privateKeyPem` holds). */
	privateKeyPem: string;
	serial: string;
	notBefore: Date;
	notAfter: Date;
}

type KeyAlgorithm = EcKeyImportParams | RsaHashedImportParams;

interface ParsedKey {
	privateKey: CryptoKey;
	algorithm: KeyAlgorithm;
	pkcs8: ArrayBuffer;
}

/**
 * Checks a certificate the customer brings before anything is stored: both PEMs parse, the key
 * matches the leaf, the chain is complete, the names cover `hostname`, and the leaf is valid now
 * and for at least 7 more days. Refuses with `validation_failed`, one violation per problem, at
 * `$.chainPem` or `$.privateKeyPem`. Runtime neutral: @peculiar/x509 and WebCrypto only.
 */
export async function validateByoCertificate(
	input: ByoCertificateInput,
): Promise<ValidatedByoCertificate> {
	const violations: Violation[] = [];
	const chainProblem = (rule: string) => violations.push({ path: "$.chainPem", rule });
	const keyProblem = (rule: string) => violations.push({ path: "$.privateKeyPem", rule });

	const certs = parseCertificates(input.chainPem, chainProblem);
	const key = await parsePrivateKey(input.privateKeyPem, keyProblem);
	if (!certs) throw AppError.validation(violations);

	const roots = input.trustedRootsPem ? trustedRoots(input.trustedRootsPem) : [];
	const path = await orderedPath(certs, roots, chainProblem);
	const leaf = path[0] ?? certs[0]!;

	if (key && !(await keyMatches(key, leaf))) {
		keyProblem(`does not match the public key of the certificate for ${describe(leaf)}`);
	}
	checkLeafProfile(leaf, chainProblem);
	checkNames(leaf, input.hostname, chainProblem);
	checkDates(leaf, path, input.now, chainProblem);

	if (violations.length > 0 || !key) throw AppError.validation(violations);
	return {
		chainPem: `${path.map((c) => c.toString("pem")).join("\n")}\n`,
		privateKeyPem: `${x509.PemConverter.encode(key.pkcs8, "PRIVATE KEY")}\n`,
		serial: leaf.serialNumber,
		notBefore: leaf.notBefore,
		notAfter: leaf.notAfter,
	};
}

function parseCertificates(
	pem: string,
	problem: (rule: string) => void,
): x509.X509Certificate[] | undefined {
	const blocks = decodePem(pem);
	if (blocks.length === 0) {
		problem("is not PEM: expected one or more -----BEGIN CERTIFICATE----- blocks");
		return undefined;
	}
	const others = blocks.filter((b) => b.type !== "CERTIFICATE").map((b) => b.type);
	if (others.length > 0) {
		problem(`may hold only CERTIFICATE blocks, found ${[...new Set(others)].join(", ")}`);
		return undefined;
	}
	if (blocks.length > MAX_CHAIN_LENGTH) {
		problem(`holds ${blocks.length} certificates, at most ${MAX_CHAIN_LENGTH} are accepted`);
		return undefined;
	}
	const certs: x509.X509Certificate[] = [];
	for (const [i, block] of blocks.entries()) {
		try {
			certs.push(new x509.X509Certificate(block.rawData));
		} catch {
			problem(`certificate ${i + 1} is not a valid X.509 certificate`);
		}
	}
	return certs.length === blocks.length ? certs : undefined;
}

function decodePem(pem: string): x509.PemStruct[] {
	try {
		return x509.PemConverter.decodeWithHeaders(pem);
	} catch {
		return [];
	}
}

function trustedRoots(pem: string): x509.X509Certificate[] {
	// The caller's own configuration, not customer input: a bad bundle is a bug, not a violation.
	return x509.PemConverter.decode(pem).map((der) => new x509.X509Certificate(der));
}

/**
 * The certificates as a path from the leaf up: each one followed by the given certificate that
 * signed it. The leaf is the one certificate that signed none of the others (the first such, as
 * given, when unrelated certificates are mixed in; those are then reported as not on the path).
 */
async function orderedPath(
	certs: x509.X509Certificate[],
	roots: x509.X509Certificate[],
	problem: (rule: string) => void,
): Promise<x509.X509Certificate[]> {
	const signers = await Promise.all(
		certs.map(async (cert) => {
			for (const other of certs) {
				if (other !== cert && (await signedBy(other, cert))) return true;
			}
			return false;
		}),
	);
	const leaf = certs[signers.indexOf(false)] ?? certs[0]!;
	const path = [leaf];
	let current = leaf;
	for (;;) {
		if (await current.isSelfSigned()) {
			if (current === leaf && certs.length === 1) {
				problem(`${describe(leaf)} is self-signed: bring a certificate issued by a CA`);
			}
			break;
		}
		const remaining = certs.filter((c) => !path.includes(c));
		const issuer = await findSigner(current, remaining);
		if (issuer) {
			if (!isCa(issuer)) {
				problem(`${describe(issuer)} signed ${describe(current)} but is not a CA certificate`);
			}
			path.push(issuer);
			current = issuer;
			continue;
		}
		if (!(await findSigner(current, roots))) {
			problem(`chain is incomplete: ${describe(current)} is not signed by any certificate given`);
		}
		break;
	}
	for (const stray of certs.filter((c) => !path.includes(c))) {
		problem(`${describe(stray)} is not part of the chain of ${describe(leaf)}`);
	}
	return path;
}

async function findSigner(
	cert: x509.X509Certificate,
	candidates: x509.X509Certificate[],
): Promise<x509.X509Certificate | undefined> {
	for (const candidate of candidates) {
		if (await signedBy(cert, candidate)) return candidate;
	}
	return undefined;
}

async function signedBy(
	cert: x509.X509Certificate,
	issuer: x509.X509Certificate,
): Promise<boolean> {
	if (cert.issuer !== issuer.subject) return false;
	try {
		return await cert.verify({ publicKey: issuer.publicKey, signatureOnly: true });
	} catch {
		// An issuer key of an algorithm WebCrypto cannot use cannot have signed it, for our purposes.
		return false;
	}
}

function isCa(cert: x509.X509Certificate): boolean {
	return cert.getExtension(x509.BasicConstraintsExtension)?.ca === true;
}

function checkLeafProfile(leaf: x509.X509Certificate, problem: (rule: string) => void): void {
	if (isCa(leaf)) problem(`${describe(leaf)} is a CA certificate, not a server certificate`);
	const eku = leaf.getExtension(x509.ExtendedKeyUsageExtension);
	if (eku && !eku.usages.map(String).includes(SERVER_AUTH)) {
		problem(`${describe(leaf)} is not for TLS servers (its extended key usage lacks serverAuth)`);
	}
}

function checkNames(
	leaf: x509.X509Certificate,
	hostname: string,
	problem: (rule: string) => void,
): void {
	const names = dnsNames(leaf);
	const wanted = hostname.toLowerCase();
	if (names.some((name) => nameCovers(name, wanted))) return;
	const listed = names.length > 0 ? names.join(", ") : "none";
	problem(`the certificate's DNS names (${listed}) do not cover ${wanted}`);
}

/** RFC 6125 6.4.3, as browsers apply it: a wildcard stands for exactly one whole left label. */
export function nameCovers(certName: string, hostname: string): boolean {
	const name = certName.toLowerCase();
	const host = hostname.toLowerCase();
	if (name === host) return true;
	if (!name.startsWith("*.")) return false;
	const dot = host.indexOf(".");
	return dot > 0 && !host.startsWith("*.") && host.slice(dot) === name.slice(1);
}

function dnsNames(cert: x509.X509Certificate): string[] {
	const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
	return (san?.names.items ?? []).filter((n) => n.type === "dns").map((n) => n.value);
}

function checkDates(
	leaf: x509.X509Certificate,
	path: x509.X509Certificate[],
	now: Date,
	problem: (rule: string) => void,
): void {
	const at = now.getTime();
	if (leaf.notBefore.getTime() > at) {
		problem(`${describe(leaf)} is not valid yet: valid from ${leaf.notBefore.toISOString()}`);
	}
	if (leaf.notAfter.getTime() <= at) {
		problem(`${describe(leaf)} expired at ${leaf.notAfter.toISOString()}`);
	} else if (leaf.notAfter.getTime() - at < BYO_MIN_REMAINING_DAYS * DAY_MS) {
		problem(
			`${describe(leaf)} expires at ${leaf.notAfter.toISOString()}, within ${BYO_MIN_REMAINING_DAYS} days: bring one valid for longer`,
		);
	}
	for (const issuer of path.slice(1)) {
		if (issuer.notAfter.getTime() <= at) {
			problem(`${describe(issuer)} in the chain expired at ${issuer.notAfter.toISOString()}`);
		}
	}
}

function describe(cert: x509.X509Certificate): string {
	return `"${cert.subject || dnsNames(cert)[0] || `serial ${cert.serialNumber}`}"`;
}

// --- the private key --------------------------------------------------------------------------

async function parsePrivateKey(
	pem: string,
	problem: (rule: string) => void,
): Promise<ParsedKey | undefined> {
	const blocks = decodePem(pem);
	if (blocks.length !== 1) {
		problem(
			blocks.length === 0
				? "is not PEM: expected one -----BEGIN PRIVATE KEY----- block"
				: `must hold exactly one key, found ${blocks.length} PEM blocks`,
		);
		return undefined;
	}
	const [block] = blocks as [x509.PemStruct];
	let pkcs8: ArrayBuffer;
	try {
		switch (block.type) {
			case "PRIVATE KEY":
				pkcs8 = block.rawData;
				break;
			case "EC PRIVATE KEY":
				pkcs8 = sec1ToPkcs8(new Uint8Array(block.rawData));
				break;
			case "RSA PRIVATE KEY":
				pkcs8 = pkcs1ToPkcs8(new Uint8Array(block.rawData));
				break;
			case "ENCRYPTED PRIVATE KEY":
				problem("is encrypted: upload the key without a passphrase");
				return undefined;
			default:
				problem(`holds a ${block.type} block, not a private key (PRIVATE KEY, PKCS#8)`);
				return undefined;
		}
	} catch (err) {
		problem(`is not a valid ${block.type}: ${(err as Error).message}; ${PKCS8_HINT}`);
		return undefined;
	}

	let algorithm: KeyAlgorithm;
	try {
		algorithm = pkcs8Algorithm(new Uint8Array(pkcs8));
	} catch (err) {
		problem(`${(err as Error).message} (supported: ECDSA P-256 or P-384, RSA 2048 bits or more)`);
		return undefined;
	}
	let privateKey: CryptoKey;
	try {
		privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, algorithm, true, ["sign"]);
	} catch {
		problem(`is not a valid ${describeAlgorithm(algorithm)} private key`);
		return undefined;
	}
	const bits = (privateKey.algorithm as RsaHashedKeyAlgorithm).modulusLength;
	if (algorithm.name === "RSASSA-PKCS1-v1_5" && bits < MIN_RSA_BITS) {
		problem(`is an RSA key of ${bits} bits, at least ${MIN_RSA_BITS} are required`);
		return undefined;
	}
	return { privateKey, algorithm, pkcs8 };
}

/** Signs with the key and verifies with the leaf's public key: the only proof that they pair. */
async function keyMatches(key: ParsedKey, leaf: x509.X509Certificate): Promise<boolean> {
	const signing = signingParams(key.algorithm);
	let publicKey: CryptoKey;
	try {
		publicKey = await leaf.publicKey.export(key.algorithm, ["verify"]);
	} catch {
		// The leaf's key is of another algorithm or curve: it cannot pair with this key.
		return false;
	}
	const message = crypto.getRandomValues(new Uint8Array(32));
	const signature = await crypto.subtle.sign(signing, key.privateKey, message);
	return crypto.subtle.verify(signing, publicKey, signature, message);
}

function signingParams(algorithm: KeyAlgorithm): EcdsaParams | AlgorithmIdentifier {
	if (algorithm.name === "ECDSA") {
		const hash = (algorithm as EcKeyImportParams).namedCurve === "P-384" ? "SHA-384" : "SHA-256";
		return { name: "ECDSA", hash };
	}
	return { name: algorithm.name };
}

function describeAlgorithm(algorithm: KeyAlgorithm): string {
	return algorithm.name === "ECDSA"
		? `ECDSA ${(algorithm as EcKeyImportParams).namedCurve}`
		: "RSA";
}

// Minimal DER, enough to read a key's algorithm and to wrap PKCS#1 and SEC1 keys in PKCS#8.
const OID = {
	rsaEncryption: "2a864886f70d010101",
	ecPublicKey: "2a8648ce3d0201",
	p256: "2a8648ce3d030107",
	p384: "2b81040022",
} as const;
const TAG = { integer: 0x02, octetString: 0x04, null: 0x05, oid: 0x06, sequence: 0x30 } as const;

interface Tlv {
	tag: number;
	content: Uint8Array;
	/** Offset just past this element in the buffer it was read from. */
	end: number;
}

function readTlv(bytes: Uint8Array, offset: number): Tlv {
	const tag = bytes[offset];
	let length = bytes[offset + 1];
	if (tag === undefined || length === undefined) throw new Error("truncated DER");
	let start = offset + 2;
	if (length & 0x80) {
		const count = length & 0x7f;
		if (count === 0 || count > 3) throw new Error("unsupported DER length");
		length = 0;
		for (let i = 0; i < count; i++) length = length * 256 + (bytes[start + i] ?? 0);
		start += count;
	}
	const end = start + length;
	if (end > bytes.length) throw new Error("truncated DER");
	return { tag, content: bytes.subarray(start, end), end };
}

/** The elements of a constructed value (a SEQUENCE's content). */
function children(content: Uint8Array): Tlv[] {
	const out: Tlv[] = [];
	for (let offset = 0; offset < content.length; ) {
		const tlv = readTlv(content, offset);
		out.push(tlv);
		offset = tlv.end;
	}
	return out;
}

function encodeTlv(tag: number, content: Uint8Array): Uint8Array {
	const n = content.length;
	const length =
		n < 0x80
			? [n]
			: n < 0x100
				? [0x81, n]
				: n < 0x10000
					? [0x82, n >> 8, n & 0xff]
					: [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
	const out = new Uint8Array(1 + length.length + n);
	out.set([tag, ...length]);
	out.set(content, 1 + length.length);
	return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
	const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
	let offset = 0;
	for (const part of parts) {
		out.set(part, offset);
		offset += part.length;
	}
	return out;
}

function hexOf(bytes: Uint8Array): string {
	let hex = "";
	for (const b of bytes) hex += b.toString(16).padStart(2, "0");
	return hex;
}

function oidBytes(hex: string): Uint8Array {
	return new Uint8Array(hex.match(/../g)?.map((h) => Number.parseInt(h, 16)) ?? []);
}

/** PrivateKeyInfo ::= SEQUENCE { version 0, AlgorithmIdentifier, OCTET STRING key } */
function pkcs8Wrap(algorithmIdentifier: Uint8Array, key: Uint8Array): ArrayBuffer {
	const version = encodeTlv(TAG.integer, new Uint8Array([0]));
	const der = encodeTlv(
		TAG.sequence,
		concat(version, algorithmIdentifier, encodeTlv(TAG.octetString, key)),
	);
	return der.slice().buffer as ArrayBuffer;
}

function topSequence(der: Uint8Array, what: string): Tlv[] {
	const top = readTlv(der, 0);
	if (top.tag !== TAG.sequence || top.end !== der.length) throw new Error(`not a DER ${what}`);
	return children(top.content);
}

/** RFC 8017 RSAPrivateKey, wrapped as PKCS#8 with the rsaEncryption algorithm. */
function pkcs1ToPkcs8(der: Uint8Array): ArrayBuffer {
	const fields = topSequence(der, "RSAPrivateKey");
	if (fields.length < 9 || fields.some((f) => f.tag !== TAG.integer)) {
		throw new Error("not a DER RSAPrivateKey");
	}
	const algorithm = encodeTlv(
		TAG.sequence,
		concat(encodeTlv(TAG.oid, oidBytes(OID.rsaEncryption)), encodeTlv(TAG.null, new Uint8Array())),
	);
	return pkcs8Wrap(algorithm, der);
}

/** RFC 5915 ECPrivateKey; its curve comes from its own `parameters` field, which must be there. */
function sec1ToPkcs8(der: Uint8Array): ArrayBuffer {
	const fields = topSequence(der, "ECPrivateKey");
	const parameters = fields.find((f) => f.tag === 0xa0);
	if (fields[0]?.tag !== TAG.integer || fields[1]?.tag !== TAG.octetString) {
		throw new Error("not a DER ECPrivateKey");
	}
	const curve = parameters ? readTlv(parameters.content, 0) : undefined;
	if (curve?.tag !== TAG.oid) throw new Error("the key does not name its curve");
	const algorithm = encodeTlv(
		TAG.sequence,
		concat(encodeTlv(TAG.oid, oidBytes(OID.ecPublicKey)), encodeTlv(TAG.oid, curve.content)),
	);
	return pkcs8Wrap(algorithm, der);
}

function pkcs8Algorithm(der: Uint8Array): KeyAlgorithm {
	let algorithm: Tlv[];
	try {
		const [version, identifier] = topSequence(der, "PrivateKeyInfo");
		if (version?.tag !== TAG.integer || identifier?.tag !== TAG.sequence) throw new Error();
		algorithm = children(identifier.content);
	} catch {
		throw new Error("is not a valid PKCS#8 private key");
	}
	const [oid, parameters] = algorithm;
	const kind = oid?.tag === TAG.oid ? hexOf(oid.content) : "";
	if (kind === OID.rsaEncryption) return { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
	if (kind === OID.ecPublicKey) {
		const curve = parameters?.tag === TAG.oid ? hexOf(parameters.content) : "";
		if (curve === OID.p256) return { name: "ECDSA", namedCurve: "P-256" };
		if (curve === OID.p384) return { name: "ECDSA", namedCurve: "P-384" };
		throw new Error("is an ECDSA key on an unsupported curve");
	}
	throw new Error("is a key of an unsupported type");
}
