// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect polyfill first.
import "reflect-metadata";
import { Resolver } from "node:dns/promises";
import * as x509 from "@peculiar/x509";
import * as acme from "acme-client";
import { eq } from "drizzle-orm";
import { z } from "zod";
import type { RegionDb } from "../../db/client";
import { acmeAccounts } from "../../db/schema/region/acme-accounts";
import type { PlatformProviderDeps } from "../providers/deps";
import { certificateHostnames } from "../providers/issuers/internal-ca";
import { IssuerError } from "../providers/issuers/issuer-error";
import type { ProviderFactory } from "../providers/registry";
import {
	redactSecret,
	resolveSecretSetting,
	secretSettingSchema,
} from "../providers/secret-setting";
import type {
	Capabilities,
	CertificateIssuer,
	DnsProvider,
	IssuedCertificate,
	IssueRequest,
} from "../providers/types";
import { acmeAccountKeyBinding } from "../secrets/acme-binding";
import { CaConnection, currentTrace, explainCaFailure, type RequestTrace } from "./acme-transport";

const EC_P256: EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };
const ECDSA_SHA256: EcdsaParams = { name: "ECDSA", hash: "SHA-256" };
/** X.520 upper bound for a common name; longer names live only in the SAN. */
const MAX_COMMON_NAME = 64;
/** Challenge records live for seconds; providers raise this to their own minimum TTL. */
const CHALLENGE_TTL = 60;
const CHALLENGE_LABEL = "_acme-challenge.";

/** An http(s) URL; a missing one is left to zod's own "is required". */
const httpUrl = z.url({
	protocol: /^https?$/,
	error: (issue) => (issue.input === undefined ? undefined : "must be an http(s) URL"),
});

const pemCertificates = z
	.string()
	.refine(
		(pem) => parsePemCertificates(pem) !== undefined,
		"must hold one or more PEM certificates",
	);

export const acmeSettingsSchema = z
	.strictObject({
		/** The CA's ACME directory, e.g. https://acme-v02.api.letsencrypt.org/directory. */
		directoryUrl: httpUrl,
		/** Contact for the account (expiry and incident mail from the CA). */
		email: z.email().optional(),
		/** External Account Binding, for CAs that tie ACME accounts to a customer account. */
		eab: z
			.strictObject({
				kid: z.string().min(1),
				/** The CA's base64url HMAC key; `{ env: "NAME" }` keeps it out of the file. */
				hmacKey: secretSettingSchema,
			})
			.optional(),
		/** Name of the configured dns provider that publishes `_acme-challenge` TXT records. */
		dnsProvider: z.string().regex(/^[a-z][a-z0-9-]*$/, "must be the name of a dns provider"),
		/** Roots to trust for the CA's own HTTPS (a private CA); the system's roots otherwise. */
		trustedRootsPem: pemCertificates.optional(),
		/** The roots issued chains lead to, as returned by trustAnchors(). */
		trustAnchorsPem: pemCertificates.optional(),
		/** Or where to fetch them (a private CA's published roots, e.g. Pebble's `/roots/0`). */
		trustAnchorUrl: httpUrl.optional(),
		/**
		 * Name servers ("ip" or "ip:port") to ask for the challenge TXT before the CA is told to
		 * look, so it never validates ahead of propagation; no check when absent.
		 */
		propagationNameservers: z.array(z.string().min(1)).min(1).optional(),
		propagationTimeoutMs: z.number().int().min(1_000).max(600_000).default(60_000),
		/** How long the CA may take to validate the challenges and then to issue. */
		validationTimeoutMs: z.number().int().min(1_000).max(600_000).default(120_000),
		requestTimeoutMs: z.number().int().min(1_000).max(120_000).default(30_000),
	})
	.refine((s) => !(s.trustAnchorsPem && s.trustAnchorUrl), {
		path: ["trustAnchorUrl"],
		error: "give trustAnchorsPem or trustAnchorUrl, not both",
	});
export type AcmeSettings = z.infer<typeof acmeSettingsSchema>;

/** How the issuer waits while the CA works: doubling from `initialMs` up to `maxMs`. */
export interface PollOptions {
	initialMs: number;
	maxMs: number;
	wait(ms: number): Promise<void>;
}

export const defaultPoll: PollOptions = {
	initialMs: 250,
	maxMs: 5_000,
	wait: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

interface AccountRow {
	directoryUrl: string;
	accountUrl: string | null;
	privateKeyCiphertext: string;
}

type Challenge = acme.Authorization["challenges"][number];

interface PendingChallenge {
	hostname: string;
	authorization: acme.Authorization;
	challenge: Challenge;
	recordName: string;
}

/**
 * ACME with DNS-01 through a configured DNS provider. One account per (issuer name, region),
 * its key created on first use and sealed in that region's database. Every issuance publishes
 * the challenge TXT records, lets the CA validate them, finalizes with a fresh P-256 key and
 * removes the records again, whatever happened. Node only: acme-client needs Node's crypto.
 */
export class AcmeIssuer implements CertificateIssuer {
	readonly capabilities: Capabilities;
	readonly #name: string;
	readonly #settings: AcmeSettings;
	readonly #deps: PlatformProviderDeps;
	readonly #eab: { kid: string; hmacKey: string } | undefined;
	readonly #ca: CaConnection;
	readonly #poll: PollOptions;
	readonly #clients = new Map<string, Promise<acme.Client>>();
	#anchors: Promise<string[]> | undefined;

	constructor(input: {
		name: string;
		settings: AcmeSettings;
		capabilities: Capabilities;
		deps: PlatformProviderDeps;
		poll?: PollOptions;
	}) {
		this.#name = input.name;
		this.#settings = input.settings;
		this.#deps = input.deps;
		this.capabilities = input.capabilities;
		this.#poll = input.poll ?? defaultPoll;
		if (!input.deps.providers) {
			throw new Error(
				`settings.dnsProvider: the platform gives this issuer no access to other providers, so it cannot reach dns provider "${input.settings.dnsProvider}"`,
			);
		}
		const eab = input.settings.eab;
		if (eab) {
			const hmacKey = resolveSecretSetting(eab.hmacKey, input.deps.env, "eab.hmacKey");
			if (!/^[A-Za-z0-9_\-+/]+={0,2}$/.test(hmacKey)) {
				throw new Error("settings.eab.hmacKey: must be the base64url HMAC key the CA gave");
			}
			this.#eab = { kid: eab.kid, hmacKey };
		}
		this.#ca = new CaConnection({
			requestTimeoutMs: input.settings.requestTimeoutMs,
			...(input.settings.trustedRootsPem
				? { trustedRootsPem: input.settings.trustedRootsPem }
				: {}),
		});
	}

	async issue(request: IssueRequest): Promise<IssuedCertificate> {
		const hostnames = certificateHostnames(request.hostnames);
		const dns = this.#dnsProvider();
		const attempt = async (trace: RequestTrace) => {
			const client = await this.#client(request.regionId);
			return await this.#issueWith(client, dns, hostnames, trace);
		};
		try {
			return await this.#ca.run(async (trace) => {
				try {
					return await attempt(trace);
				} catch (err) {
					if (trace.problem?.type !== "accountDoesNotExist") {
						throw explainCaFailure(err, trace, this.#settings.requestTimeoutMs, hostnames);
					}
				}
				// The CA lost or dropped the account (a reset test CA, a deactivation): register the
				// same key again, once.
				await this.#forgetAccount(request.regionId);
				try {
					return await attempt(trace);
				} catch (err) {
					throw explainCaFailure(err, trace, this.#settings.requestTimeoutMs, hostnames);
				}
			});
		} catch (err) {
			throw this.#redacted(err);
		}
	}

	/** The same for every region: one CA serves them all. */
	async trustAnchors(_regionId: string): Promise<string[]> {
		const { trustAnchorsPem, trustAnchorUrl } = this.#settings;
		if (trustAnchorsPem) return parsePemCertificates(trustAnchorsPem) ?? [];
		// No anchors configured: the CA's roots are public ones, already in every client's store.
		if (!trustAnchorUrl) return [];
		if (!this.#anchors) {
			const loading = this.#ca.getText(trustAnchorUrl).then((text) => {
				const pems = parsePemCertificates(text);
				if (!pems) {
					throw new IssuerError(`${trustAnchorUrl} did not answer with PEM certificates`, {
						retryable: false,
					});
				}
				return pems;
			});
			this.#anchors = loading;
			loading.catch(() => {
				this.#anchors = undefined;
			});
		}
		return this.#anchors;
	}

	/** Frees the connections to the CA (tests, shutdown). */
	close(): void {
		this.#ca.close();
	}

	async #issueWith(
		client: acme.Client,
		dns: DnsProvider,
		hostnames: string[],
		trace: RequestTrace,
	): Promise<IssuedCertificate> {
		const order = await client.createOrder({
			identifiers: hostnames.map((value) => ({ type: "dns", value })),
		});
		const authorizations = await client.getAuthorizations(order);
		const pending = authorizations
			.filter((a) => a.status !== "valid")
			.map((authorization) => dnsChallengeOf(authorization));

		// A name and its wildcard share one record name: their values go into one record set.
		const records = new Map<string, string[]>();
		for (const item of pending) {
			const value = await client.getChallengeKeyAuthorization(item.challenge);
			records.set(item.recordName, [...(records.get(item.recordName) ?? []), value]);
		}
		let issued: IssuedCertificate | undefined;
		let failure: unknown;
		const published: string[] = [];
		try {
			await this.#publish(dns, records, published);
			await this.#awaitPropagation(records);
			for (const item of pending) await client.completeChallenge(item.challenge);
			for (const item of pending) await this.#awaitAuthorization(client, item);
			issued = await this.#finalize(client, order, hostnames);
		} catch (err) {
			failure = err;
		}
		const cleanup = await this.#unpublish(dns, published);
		if (failure !== undefined) {
			const explained = explainCaFailure(
				failure,
				trace,
				this.#settings.requestTimeoutMs,
				hostnames,
			);
			if (cleanup && explained instanceof Error) explained.message += `; ${cleanup.message}`;
			throw explained;
		}
		if (cleanup) throw cleanup;
		return issued!;
	}

	/** Upserts each record set; `published` collects every name that may now exist. */
	async #publish(
		dns: DnsProvider,
		records: Map<string, string[]>,
		published: string[],
	): Promise<void> {
		for (const [name, values] of records) {
			try {
				await dns.upsert({ name, type: "TXT", ttl: CHALLENGE_TTL, values });
				published.push(name);
			} catch (err) {
				const failure = dnsFailure(
					`cannot publish the challenge record ${name}`,
					this.#settings.dnsProvider,
					err,
					name.slice(CHALLENGE_LABEL.length),
				);
				// A retryable failure (a timeout) may have been applied all the same.
				if (failure.retryable) published.push(name);
				throw failure;
			}
		}
	}

	/** Removes every challenge record; the failure to remove one is reported, not thrown. */
	async #unpublish(dns: DnsProvider, names: string[]): Promise<IssuerError | undefined> {
		const failed: string[] = [];
		let first: unknown;
		for (const name of names) {
			try {
				await dns.remove(name, "TXT");
			} catch (err) {
				failed.push(name);
				first ??= err;
			}
		}
		if (failed.length === 0) return undefined;
		// The certificate (if any) is dropped: the job retries, and its upsert replaces the records.
		const error = dnsFailure(
			`cannot remove the challenge record(s) ${failed.join(", ")}`,
			this.#settings.dnsProvider,
			first,
		);
		return new IssuerError(error.message, { retryable: true, cause: first });
	}

	async #awaitPropagation(records: Map<string, string[]>): Promise<void> {
		const servers = this.#settings.propagationNameservers;
		if (!servers) return;
		const resolver = new Resolver({ timeout: 2_000, tries: 1 });
		resolver.setServers(servers);
		for (const [name, values] of records) {
			await this.#pollUntil(
				this.#settings.propagationTimeoutMs,
				async () => {
					const answers = await resolver.resolveTxt(name).catch(() => [] as string[][]);
					const seen = new Set(answers.map((chunks) => chunks.join("")));
					return values.every((v) => seen.has(v)) ? true : undefined;
				},
				() =>
					new IssuerError(
						`the challenge record ${name} is not visible at ${servers.join(", ")} after ${this.#settings.propagationTimeoutMs} ms`,
						{ retryable: true },
					),
			);
		}
	}

	async #awaitAuthorization(client: acme.Client, item: PendingChallenge): Promise<void> {
		await this.#pollUntil(
			this.#settings.validationTimeoutMs,
			async () => {
				const [authorization] = await client.getAuthorizations({
					authorizations: [item.authorization.url],
				} as acme.Order);
				if (authorization?.status === "valid") return true;
				if (authorization && authorization.status !== "pending") {
					throw validationFailure(item, authorization);
				}
				return undefined;
			},
			() =>
				new IssuerError(
					`the CA did not validate ${item.hostname} within ${this.#settings.validationTimeoutMs} ms`,
					{ retryable: true, hostname: item.hostname },
				),
		);
	}

	async #finalize(
		client: acme.Client,
		order: acme.Order,
		hostnames: string[],
	): Promise<IssuedCertificate> {
		const keys = (await crypto.subtle.generateKey(EC_P256, true, [
			"sign",
			"verify",
		])) as CryptoKeyPair;
		const [first] = hostnames as [string, ...string[]];
		const csr = await x509.Pkcs10CertificateRequestGenerator.create({
			...(first.length <= MAX_COMMON_NAME ? { name: [{ CN: [first] }] } : {}),
			keys,
			signingAlgorithm: ECDSA_SHA256,
			extensions: [
				new x509.SubjectAlternativeNameExtension(
					hostnames.map((value) => ({ type: "dns" as const, value })),
				),
			],
		});
		let current = await client.finalizeOrder(order, csr.toString("pem"));
		const valid = await this.#pollUntil(
			this.#settings.validationTimeoutMs,
			async () => {
				if (current.status === "valid") return current;
				if (current.status === "invalid") {
					throw new IssuerError(
						`the CA refused to issue for ${hostnames.join(", ")}: ${problemDetail(current.error)}`,
						{ retryable: false },
					);
				}
				current = await client.getOrder(current);
				return current.status === "valid" ? current : undefined;
			},
			() =>
				new IssuerError(
					`the CA did not issue within ${this.#settings.validationTimeoutMs} ms of finalizing`,
					{ retryable: true },
				),
		);
		const chain = parseChain(await client.getCertificate(valid));
		const [leaf] = chain;
		const ours = await crypto.subtle.exportKey("spki", keys.publicKey);
		if (!leaf || hex(leaf.publicKey.rawData) !== hex(ours)) {
			throw new IssuerError("the CA returned a certificate for another key", { retryable: false });
		}
		const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
		return {
			chainPem: `${chain.map((c) => c.toString("pem")).join("\n")}\n`,
			privateKeyPem: `${x509.PemConverter.encode(pkcs8, "PRIVATE KEY")}\n`,
			serial: leaf.serialNumber,
			notBefore: leaf.notBefore,
			notAfter: leaf.notAfter,
		};
	}

	/** Polls `check` with doubling waits until it returns a value, or `timeoutMs` passes. */
	async #pollUntil<T>(
		timeoutMs: number,
		check: () => Promise<T | undefined>,
		timeout: () => IssuerError,
	): Promise<T> {
		const deadline = this.#deps.clock.now().getTime() + timeoutMs;
		let delay = this.#poll.initialMs;
		for (;;) {
			const result = await check();
			if (result !== undefined) return result;
			const left = deadline - this.#deps.clock.now().getTime();
			if (left <= 0) throw timeout();
			await this.#poll.wait(Math.min(delay, left));
			delay = Math.min(delay * 2, this.#poll.maxMs);
		}
	}

	/** The region's ACME client, registering the account (and creating its key) on first use. */
	#client(regionId: string): Promise<acme.Client> {
		let client = this.#clients.get(regionId);
		if (!client) {
			// Concurrent callers share this promise: its failure is explained here, with the trace
			// of the call that made the requests, so every caller gets the same IssuerError.
			const trace = currentTrace();
			client = this.#openAccount(regionId).catch((err) => {
				throw trace ? explainCaFailure(err, trace, this.#settings.requestTimeoutMs, []) : err;
			});
			this.#clients.set(regionId, client);
			// A failure (CA or database down) is retried on the next call, not cached.
			client.catch(() => this.#clients.delete(regionId));
		}
		return client;
	}

	async #openAccount(regionId: string): Promise<acme.Client> {
		const id = acmeAccountId(this.#name, regionId);
		const { db } = this.#deps.store.region(regionId);
		const { directoryUrl } = this.#settings;
		let row = await this.#loadOrCreateRow(db, regionId, id);
		if (row.directoryUrl !== directoryUrl) {
			// Another CA (or another directory of it): the key stays, the account is registered anew.
			await db
				.update(acmeAccounts)
				.set({ directoryUrl, accountUrl: null })
				.where(eq(acmeAccounts.id, id));
			row = { ...row, directoryUrl, accountUrl: null };
		}
		const opened = await this.#deps.secrets.open(
			row.privateKeyCiphertext,
			acmeAccountKeyBinding(regionId, id),
		);
		// acme-client signs with Node's crypto and needs the key as PEM for as long as it runs.
		const accountKey = x509.PemConverter.encode(new Uint8Array(opened).buffer, "PRIVATE KEY");
		opened.fill(0);
		const client = new acme.Client({
			directoryUrl,
			accountKey,
			...(row.accountUrl ? { accountUrl: row.accountUrl } : {}),
			...(this.#eab ? { externalAccountBinding: this.#eab } : {}),
		});
		if (!row.accountUrl) {
			await this.#register(client);
			await db
				.update(acmeAccounts)
				.set({ accountUrl: client.getAccountUrl() })
				.where(eq(acmeAccounts.id, id));
		}
		return client;
	}

	/**
	 * Finds the CA's account for this key, or creates it. Asking first keeps a second node (or a
	 * re-registration after the CA lost our URL) from sending an empty account update, which
	 * CAs refuse as malformed.
	 */
	async #register(client: acme.Client): Promise<void> {
		const trace = currentTrace();
		try {
			await client.createAccount({ onlyReturnExisting: true });
			return;
		} catch (err) {
			if (trace?.problem?.type !== "accountDoesNotExist") throw err;
		}
		await client.createAccount({
			termsOfServiceAgreed: true,
			...(this.#settings.email ? { contact: [`mailto:${this.#settings.email}`] } : {}),
		});
	}

	async #forgetAccount(regionId: string): Promise<void> {
		this.#clients.delete(regionId);
		await this.#deps.store
			.region(regionId)
			.db.update(acmeAccounts)
			.set({ accountUrl: null })
			.where(eq(acmeAccounts.id, acmeAccountId(this.#name, regionId)));
	}

	async #loadOrCreateRow(db: RegionDb, regionId: string, id: string): Promise<AccountRow> {
		const existing = await readAccountRow(db, id);
		if (existing) return existing;
		const keys = (await crypto.subtle.generateKey(EC_P256, true, [
			"sign",
			"verify",
		])) as CryptoKeyPair;
		const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
		const privateKeyCiphertext = await this.#deps.secrets.seal(
			pkcs8,
			acmeAccountKeyBinding(regionId, id),
		);
		pkcs8.fill(0);
		// Two nodes may race here; the primary key makes one insert win and both use its row.
		await db
			.insert(acmeAccounts)
			.values({
				id,
				directoryUrl: this.#settings.directoryUrl,
				accountUrl: null,
				privateKeyCiphertext,
				createdAt: this.#deps.clock.now(),
			})
			.onConflictDoNothing({ target: acmeAccounts.id });
		const stored = await readAccountRow(db, id);
		if (!stored) throw new Error(`the ACME account ${id} could not be stored`);
		return stored;
	}

	#dnsProvider(): DnsProvider {
		try {
			return this.#deps.providers!.get("dns", this.#settings.dnsProvider);
		} catch (err) {
			throw new IssuerError(`settings.dnsProvider: ${(err as Error).message}`, {
				retryable: false,
				cause: err,
			});
		}
	}

	#redacted(err: unknown): unknown {
		if (this.#eab && err instanceof Error) {
			err.message = redactSecret(err.message, this.#eab.hmacKey);
		}
		return err;
	}
}

export const acmeIssuerFactory: ProviderFactory<"issuer", AcmeSettings> = {
	kind: "issuer",
	type: "acme",
	settingsSchema: acmeSettingsSchema,
	endpointSettings: ["directoryUrl", "trustAnchorUrl"],
	providerSettings: { dnsProvider: "dns" },
	create: ({ name, settings, capabilities, deps }) =>
		new AcmeIssuer({ name, settings, capabilities, deps }),
};

/** `acme_accounts.id`: one account per issuer name and region. */
export function acmeAccountId(issuerName: string, regionId: string): string {
	return `${issuerName}:${regionId}`;
}

async function readAccountRow(db: RegionDb, id: string): Promise<AccountRow | undefined> {
	const [row] = await db
		.select({
			directoryUrl: acmeAccounts.directoryUrl,
			accountUrl: acmeAccounts.accountUrl,
			privateKeyCiphertext: acmeAccounts.privateKeyCiphertext,
		})
		.from(acmeAccounts)
		.where(eq(acmeAccounts.id, id))
		.limit(1);
	return row;
}

function dnsChallengeOf(authorization: acme.Authorization): PendingChallenge {
	const base = authorization.identifier.value.toLowerCase();
	const hostname = authorization.wildcard ? `*.${base}` : base;
	const challenge = authorization.challenges.find((c) => c.type === "dns-01");
	if (!challenge) {
		throw new IssuerError(`the CA offers no dns-01 challenge for ${hostname}`, {
			retryable: false,
			hostname,
		});
	}
	return { hostname, authorization, challenge, recordName: `${CHALLENGE_LABEL}${base}` };
}

/** Problem types of a failed validation that a person must fix; the rest may pass on retry. */
const VALIDATION_REFUSALS = new Set([
	"urn:ietf:params:acme:error:caa",
	"urn:ietf:params:acme:error:rejectedIdentifier",
	"urn:ietf:params:acme:error:unsupportedIdentifier",
]);

function validationFailure(item: PendingChallenge, authorization: acme.Authorization): IssuerError {
	const challenge = authorization.challenges.find((c) => c.type === "dns-01");
	const error = (challenge?.error ?? {}) as { type?: string; detail?: string };
	const detail = error.detail ?? `authorization is ${authorization.status}`;
	// A missing or stale TXT (propagation) is the usual cause: the job's retry may well pass.
	return new IssuerError(
		`the CA could not validate ${item.hostname} through ${item.recordName}: ${detail}`,
		{ retryable: !VALIDATION_REFUSALS.has(error.type ?? ""), hostname: item.hostname },
	);
}

/** DnsProviderError says whether to retry; any other error from a provider is taken as final. */
function dnsFailure(what: string, provider: string, err: unknown, hostname?: string): IssuerError {
	const reason = err instanceof Error ? err.message : String(err);
	const retryable = (err as { retryable?: unknown })?.retryable === true;
	return new IssuerError(`${what} through dns provider "${provider}": ${reason}`, {
		retryable,
		...(hostname ? { hostname } : {}),
		cause: err,
	});
}

function problemDetail(error: unknown): string {
	const { type, detail } = (error ?? {}) as { type?: string; detail?: string };
	return detail ?? type ?? "no reason given";
}

function parseChain(pem: string): x509.X509Certificate[] {
	return x509.PemConverter.decode(pem).map((der) => new x509.X509Certificate(der));
}

/** The PEM certificates in `text`, re-encoded one per block; undefined when there are none. */
function parsePemCertificates(text: string): string[] | undefined {
	try {
		const blocks = x509.PemConverter.decodeWithHeaders(text);
		if (blocks.length === 0 || blocks.some((b) => b.type !== "CERTIFICATE")) return undefined;
		return blocks.map((b) => new x509.X509Certificate(b.rawData).toString("pem"));
	} catch {
		return undefined;
	}
}

function hex(buffer: ArrayBuffer): string {
	return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
