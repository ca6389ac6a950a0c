// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect polyfill first.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { eq } from "drizzle-orm";
import { z } from "zod";
import type { RegionDb } from "../../../db/client";
import { internalCa } from "../../../db/schema/region/internal-ca";
import { AppError } from "../../errors";
import { internalCaKeyBinding } from "../../secrets/bindings";
import type { PlatformProviderDeps } from "../deps";
import type { ProviderFactory } from "../registry";
import type { Capabilities, CertificateIssuer, IssuedCertificate, IssueRequest } from "../types";

/** Every region has exactly one root row; a fixed id lets racing creators collide on the key. */
const ROOT_ROW_ID = "root";
const EC_P256: EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };
const ECDSA_SHA256: EcdsaParams = { name: "ECDSA", hash: "SHA-256" };
const ROOT_YEARS = 10;
const DAY_MS = 24 * 60 * 60 * 1000;
/** Back-dating tolerates clients whose clocks run a little behind ours. */
const BACKDATE_MS = 5 * 60 * 1000;
const MAX_HOSTNAMES = 100;
/** X.520 upper bound for a common name; longer names live only in the SAN. */
const MAX_COMMON_NAME = 64;

export const internalCaSettingsSchema = z.strictObject({
	// 825 days is the longest TLS server certificate Apple platforms accept from any root.
	leafDays: z.number().int().min(1).max(825).default(90),
});
export type InternalCaSettings = z.infer<typeof internalCaSettingsSchema>;

interface RootRow {
	certPem: string;
	privateKeyCiphertext: string;
}

interface RegionRoot {
	cert: x509.X509Certificate;
	pem: string;
	signingKey: CryptoKey;
}

/**
 * The embedded and air-gapped issuer: one root CA per region, created on first use, its key
 * sealed in that region's database so it never leaves the region. Leaf keys are generated per
 * issuance and returned to the caller, who seals them with the certificate.
 */
export class InternalCaIssuer implements CertificateIssuer {
	readonly capabilities: Capabilities;
	readonly #deps: PlatformProviderDeps;
	readonly #leafDays: number;
	/** One load per region per process; the promise is shared so concurrent callers wait together. */
	readonly #roots = new Map<string, Promise<RegionRoot>>();

	constructor(input: {
		deps: PlatformProviderDeps;
		capabilities: Capabilities;
		settings: InternalCaSettings;
	}) {
		this.#deps = input.deps;
		this.capabilities = input.capabilities;
		this.#leafDays = input.settings.leafDays;
	}

	async issue(request: IssueRequest): Promise<IssuedCertificate> {
		const hostnames = certificateHostnames(request.hostnames);
		const root = await this.#root(request.regionId);
		const now = this.#deps.clock.now();
		if (root.cert.notAfter.getTime() <= now.getTime()) {
			throw new Error(
				`the internal CA root of region "${request.regionId}" expired at ${root.cert.notAfter.toISOString()}`,
			);
		}
		// A leaf must not outlive its root: clients would reject it from that day on anyway.
		const notAfter = new Date(
			Math.min(now.getTime() + this.#leafDays * DAY_MS, root.cert.notAfter.getTime()),
		);
		const keys = (await crypto.subtle.generateKey(EC_P256, true, [
			"sign",
			"verify",
		])) as CryptoKeyPair;
		const [first] = hostnames as [string, ...string[]];
		const withCommonName = first.length <= MAX_COMMON_NAME;
		const rootKeyId = root.cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
		if (!rootKeyId)
			throw new Error(`the internal CA root of region "${request.regionId}" has no key identifier`);

		const leaf = await x509.X509CertificateGenerator.create({
			serialNumber: randomSerialHex(),
			...(withCommonName ? { subject: [{ CN: [first] }] } : {}),
			issuer: root.cert.subjectName,
			notBefore: new Date(now.getTime() - BACKDATE_MS),
			notAfter,
			publicKey: keys.publicKey,
			signingKey: root.signingKey,
			signingAlgorithm: ECDSA_SHA256,
			extensions: [
				new x509.BasicConstraintsExtension(false, undefined, true),
				new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
				new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
				// RFC 5280 4.2.1.6: with an empty subject the SAN carries the identity and is critical.
				new x509.SubjectAlternativeNameExtension(
					hostnames.map((value) => ({ type: "dns" as const, value })),
					!withCommonName,
				),
				await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
				new x509.AuthorityKeyIdentifierExtension(rootKeyId),
			],
		});

		const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
		return {
			chainPem: `${leaf.toString("pem")}\n${root.pem.trim()}\n`,
			privateKeyPem: `${x509.PemConverter.encode(pkcs8, "PRIVATE KEY")}\n`,
			serial: leaf.serialNumber,
			notBefore: leaf.notBefore,
			notAfter: leaf.notAfter,
		};
	}

	async trustAnchors(regionId: string): Promise<string[]> {
		return [(await this.#root(regionId)).pem];
	}

	#root(regionId: string): Promise<RegionRoot> {
		let root = this.#roots.get(regionId);
		if (!root) {
			root = loadOrCreateRootRow(this.#deps, regionId).then((row) =>
				openRoot(this.#deps, regionId, row),
			);
			this.#roots.set(regionId, root);
			// A failed load (database unreachable) is retried on the next call, not cached.
			root.catch(() => this.#roots.delete(regionId));
		}
		return root;
	}
}

export const internalCaFactory: ProviderFactory<"issuer", InternalCaSettings> = {
	kind: "issuer",
	type: "internal",
	settingsSchema: internalCaSettingsSchema,
	endpointSettings: [],
	create: ({ settings, capabilities, deps }) =>
		new InternalCaIssuer({ deps, capabilities, settings }),
};

/** The PEM of a region's root, created if the region has none yet (the CLI writes it to `data/ca.pem`). */
export async function internalCaRootPem(
	deps: PlatformProviderDeps,
	regionId: string,
): Promise<string> {
	return (await loadOrCreateRootRow(deps, regionId)).certPem;
}

/**
 * Lower-case DNS names (an optional leading `*.` label), deduplicated in order. Anything else is
 * refused before a key is generated, with the offending name in the message.
 */
export function certificateHostnames(hostnames: readonly string[]): string[] {
	if (hostnames.length === 0)
		throw new AppError("bad_request", "at least one hostname is required");
	const unique = [...new Set(hostnames)];
	if (unique.length > MAX_HOSTNAMES) {
		throw new AppError("bad_request", `at most ${MAX_HOSTNAMES} hostnames per certificate`);
	}
	for (const name of unique) {
		const reason = hostnameProblem(name);
		if (reason)
			throw new AppError("bad_request", `invalid hostname ${JSON.stringify(name)}: ${reason}`);
	}
	return unique;
}

const HOST_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

function hostnameProblem(name: string): string | undefined {
	const base = name.startsWith("*.") ? name.slice(2) : name;
	if (base.length === 0 || base.length > 253) return "must be 1 to 253 characters";
	const labels = base.split(".");
	if (!labels.every((label) => HOST_LABEL.test(label))) {
		return "must be a lower-case DNS name: labels of a-z, 0-9 and inner dashes, no trailing dot (a wildcard only as the whole first label, `*.`)";
	}
	// An all-numeric last label means an IP address, which belongs in an iPAddress SAN, not here.
	if (/^[0-9]+$/.test(labels[labels.length - 1] ?? "")) return "IP addresses are not DNS names";
	return undefined;
}

async function loadOrCreateRootRow(deps: PlatformProviderDeps, regionId: string): Promise<RootRow> {
	const { db } = deps.store.region(regionId);
	const existing = await readRootRow(db);
	if (existing) return existing;
	const created = await createRootRow(deps, regionId);
	// Two nodes may race here; the fixed id makes one insert win and both then use its row.
	await db.insert(internalCa).values(created).onConflictDoNothing({ target: internalCa.id });
	const stored = await readRootRow(db);
	if (!stored) throw new Error(`the internal CA root of region "${regionId}" could not be stored`);
	return stored;
}

async function readRootRow(db: RegionDb): Promise<RootRow | undefined> {
	const [row] = await db
		.select({ certPem: internalCa.certPem, privateKeyCiphertext: internalCa.privateKeyCiphertext })
		.from(internalCa)
		.where(eq(internalCa.id, ROOT_ROW_ID))
		.limit(1);
	return row;
}

async function createRootRow(deps: PlatformProviderDeps, regionId: string) {
	const now = deps.clock.now();
	const notAfter = new Date(now);
	notAfter.setUTCFullYear(notAfter.getUTCFullYear() + ROOT_YEARS);
	const keys = (await crypto.subtle.generateKey(EC_P256, true, [
		"sign",
		"verify",
	])) as CryptoKeyPair;
	const cert = await x509.X509CertificateGenerator.createSelfSigned({
		serialNumber: randomSerialHex(),
		name: [{ CN: [`Castellan Internal CA ${regionId}`] }],
		notBefore: new Date(now.getTime() - BACKDATE_MS),
		notAfter,
		signingAlgorithm: ECDSA_SHA256,
		keys,
		extensions: [
			// Path length 0: this root signs leaves only, never another CA.
			new x509.BasicConstraintsExtension(true, 0, true),
			new x509.KeyUsagesExtension(
				x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
				true,
			),
			await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
		],
	});
	const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
	const privateKeyCiphertext = await deps.secrets.seal(
		pkcs8,
		internalCaKeyBinding(regionId, ROOT_ROW_ID),
	);
	pkcs8.fill(0);
	return {
		id: ROOT_ROW_ID,
		certPem: cert.toString("pem"),
		privateKeyCiphertext,
		notAfter: cert.notAfter,
		createdAt: now,
	};
}

async function openRoot(
	deps: PlatformProviderDeps,
	regionId: string,
	row: RootRow,
): Promise<RegionRoot> {
	const opened = await deps.secrets.open(
		row.privateKeyCiphertext,
		internalCaKeyBinding(regionId, ROOT_ROW_ID),
	);
	// Copied into an ArrayBuffer-backed array (what WebCrypto's types accept); both are wiped.
	const pkcs8 = new Uint8Array(opened);
	opened.fill(0);
	try {
		// Not extractable: once imported, the root key can sign but never be exported again.
		const signingKey = await crypto.subtle.importKey("pkcs8", pkcs8, EC_P256, false, ["sign"]);
		return { cert: new x509.X509Certificate(row.certPem), pem: row.certPem, signingKey };
	} finally {
		pkcs8.fill(0);
	}
}

/** 16 random bytes, top bit clear (positive) and second bit set (no leading zero to strip). */
function randomSerialHex(): string {
	const bytes = crypto.getRandomValues(new Uint8Array(16));
	bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
	let hex = "";
	for (const b of bytes) hex += b.toString(16).padStart(2, "0");
	return hex;
}
