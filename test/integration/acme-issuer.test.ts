// @peculiar/x509 needs the Reflect polyfill loaded before it.
import "reflect-metadata";
import { createServer, type Server } from "node:http";
import { type AddressInfo, createServer as createNetServer, type Socket } from "node:net";
import { createClient } from "@libsql/client";
import * as x509 from "@peculiar/x509";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { acmeAccounts } from "../../db/schema/region/acme-accounts";
import { openStore } from "../../db/store";
import {
	AcmeIssuer,
	acmeAccountId,
	acmeIssuerFactory,
	acmeSettingsSchema,
	type PollOptions,
} from "../../functions/node/acme-issuer";
import { createNodeRegistry } from "../../functions/node/node-registry";
import {
	buildProviders,
	ProviderBuildError,
	type ProviderDeclaration,
} from "../../functions/providers/build-providers";
import { createDefaultRegistry } from "../../functions/providers/default-registry";
import type { PlatformProviderDeps, ProviderAccess } from "../../functions/providers/deps";
import { PowerDnsProvider } from "../../functions/providers/dns/powerdns";
import { IssuerError } from "../../functions/providers/issuers/issuer-error";
import type {
	DnsProvider,
	DnsRecordSet,
	DnsRecordType,
	ProviderByKind,
	ProviderKind,
} from "../../functions/providers/types";
import { type Clock, systemClock } from "../../functions/runtime";
import { acmeAccountKeyBinding } from "../../functions/secrets/acme-binding";
import { createSecretBox } from "../../functions/secrets/envelope";
import { MasterKeyring } from "../../functions/secrets/keyring";
import type { SecretBox } from "../../functions/secrets/secret-box";
import { issuerConformance, verifiedPath } from "../conformance/certificate-issuer";
import { type PdnsServer, startPdnsServer } from "../helpers/pdns-server";
import { type PebbleServer, startPebble } from "../helpers/pebble-server";
import { createTempStore, type TempStore } from "../helpers/temp-store";

const ZONE = "acme.test";
const BLOCKED = `blocked.${ZONE}`;
const EU = "eu-central";
const US = "us-east";
const capabilities = { jurisdiction: "EU", customerControlled: false };

let pdns: PdnsServer;
let pebble: PebbleServer;

beforeAll(async () => {
	pdns = await startPdnsServer({ zones: [ZONE] });
	pebble = await startPebble({ dnsServer: pdns.dnsAddress, domainBlocklist: [BLOCKED] });
});
afterAll(async () => {
	await pebble?.stop();
	await pdns?.stop();
});

async function newSecretBox(): Promise<SecretBox> {
	return createSecretBox(
		await MasterKeyring.fromKeys([crypto.getRandomValues(new Uint8Array(32))]),
	);
}

function uniqueHost(label: string): string {
	return `${label}-${crypto.randomUUID().slice(0, 8)}.${ZONE}`;
}

function powerDns(): PowerDnsProvider {
	return new PowerDnsProvider({
		apiUrl: pdns.apiUrl,
		apiKey: pdns.apiKey,
		zones: [ZONE],
		capabilities,
	});
}

/** What the issuer may look up: only the DNS providers given here, by name. */
function dnsAccess(providers: Record<string, DnsProvider>): ProviderAccess {
	return {
		get<K extends ProviderKind>(kind: K, name: string): ProviderByKind[K] {
			const provider = providers[name];
			if (kind !== "dns" || !provider) throw new Error(`no dns provider named "${name}"`);
			return provider as ProviderByKind[K];
		},
	};
}

/** Settings for the suite's Pebble; `extra` overrides or adds. */
function pebbleSettings(extra: Record<string, unknown> = {}) {
	return {
		directoryUrl: pebble.directoryUrl,
		dnsProvider: "tenant-dns",
		trustedRootsPem: pebble.tlsCaPem,
		trustAnchorUrl: `${pebble.managementUrl}/roots/0`,
		...extra,
	};
}

const issuers: AcmeIssuer[] = [];
afterEach(() => {
	for (const issuer of issuers.splice(0)) issuer.close();
});

function newIssuer(input: {
	deps: PlatformProviderDeps;
	settings?: Record<string, unknown>;
	name?: string;
}): AcmeIssuer {
	const issuer = acmeIssuerFactory.create({
		name: input.name ?? "pebble",
		settings: acmeSettingsSchema.parse(input.settings ?? pebbleSettings()),
		capabilities,
		deps: input.deps,
	}) as AcmeIssuer;
	issuers.push(issuer);
	return issuer;
}

/** The issuer's failure; fails the test when it does not fail with an IssuerError. */
async function issuerError(issuing: Promise<unknown>): Promise<IssuerError> {
	const error = await issuing.then(
		() => undefined,
		(err: unknown) => err,
	);
	expect(error).toBeInstanceOf(IssuerError);
	return error as IssuerError;
}

async function anchorCerts(issuer: AcmeIssuer): Promise<x509.X509Certificate[]> {
	return (await issuer.trustAnchors(EU)).map((pem) => new x509.X509Certificate(pem));
}

interface DnsEvent {
	op: "upsert" | "remove";
	name: string;
	values?: string[];
	/** The TXT answers of a real DNS query to PowerDNS right after the upsert / just before the remove. */
	served: string[];
}

/**
 * The PowerDNS provider, with every call recorded alongside what PowerDNS then serves through
 * real DNS (what Pebble, pointed at it, resolves). `tamper` publishes a wrong value instead.
 */
class ObservedDns implements DnsProvider {
	readonly events: DnsEvent[] = [];
	readonly capabilities;

	constructor(
		readonly inner: DnsProvider,
		readonly options: { tamper?: boolean; drop?: boolean } = {},
	) {
		this.capabilities = inner.capabilities;
	}

	async upsert(record: DnsRecordSet): Promise<void> {
		if (!this.options.drop) {
			const values = this.options.tamper ? ["not-the-key-authorization"] : record.values;
			await this.inner.upsert({ ...record, values });
		}
		const served = await pdns.query(record.name, "TXT");
		this.events.push({ op: "upsert", name: record.name, values: [...record.values], served });
	}

	async remove(name: string, type: DnsRecordType): Promise<void> {
		const served = await pdns.query(name, "TXT");
		this.events.push({ op: "remove", name, served });
		await this.inner.remove(name, type);
	}

	list(zone?: string): Promise<DnsRecordSet[]> {
		return this.inner.list(zone);
	}
}

/**
 * Sends one change at a time: PowerDNS's gsqlite3 backend answers concurrent PATCHes with 500
 * ("database is locked"), which the provider rightly reports as retryable. The account test
 * issues concurrently to race account creation, not to test PowerDNS.
 */
class OneAtATime implements DnsProvider {
	readonly capabilities;
	#queue: Promise<unknown> = Promise.resolve();

	constructor(readonly inner: DnsProvider) {
		this.capabilities = inner.capabilities;
	}

	#serial<T>(fn: () => Promise<T>): Promise<T> {
		const next = this.#queue.then(fn, fn);
		this.#queue = next.catch(() => {});
		return next;
	}

	upsert(record: DnsRecordSet): Promise<void> {
		return this.#serial(() => this.inner.upsert(record));
	}

	remove(name: string, type: DnsRecordType): Promise<void> {
		return this.#serial(() => this.inner.remove(name, type));
	}

	list(zone?: string): Promise<DnsRecordSet[]> {
		return this.inner.list(zone);
	}
}

issuerConformance("acme (Pebble, DNS-01 through PowerDNS)", async () => {
	const temp = await createTempStore();
	const label = `conf-${crypto.randomUUID().slice(0, 8)}`;
	const declarations: Record<string, ProviderDeclaration> = {
		"tenant-dns": {
			kind: "dns",
			type: "powerdns",
			settings: { apiUrl: pdns.apiUrl, apiKey: { env: "PDNS_API_KEY" }, zones: [ZONE] },
			capabilities,
		},
		pebble: { kind: "issuer", type: "acme", settings: pebbleSettings(), capabilities },
	};
	// The lookup exists only once buildProviders returns; the issuer resolves its DNS provider lazily.
	let built: ReturnType<typeof buildProviders> | undefined;
	const providers = buildProviders(declarations, createNodeRegistry(), {
		store: temp.store,
		secrets: await newSecretBox(),
		clock: systemClock,
		env: { PDNS_API_KEY: pdns.apiKey },
		providers: { get: (kind, name) => built!.get(kind, name) },
	});
	built = providers;
	const issuer = providers.get("issuer", "pebble") as AcmeIssuer;
	return {
		issuer,
		regionId: EU,
		hostnames: [`${label}.${ZONE}`, `*.${label}.${ZONE}`],
		cleanup: async () => {
			issuer.close();
			temp.close();
		},
	};
});

describe("acme issuer against Pebble and PowerDNS", () => {
	let temp: TempStore;
	let secrets: SecretBox;

	beforeEach(async () => {
		temp = await createTempStore();
		secrets = await newSecretBox();
	});
	afterEach(() => temp.close());

	const deps = (providers: Record<string, DnsProvider>, clock: Clock = systemClock) => ({
		store: temp.store,
		secrets,
		clock,
		providers: dnsAccess(providers),
	});

	async function accountRows() {
		return temp.store.region(EU).db.select().from(acmeAccounts);
	}

	describe("DNS-01", () => {
		it("publishes one TXT set per challenge name, served by PowerDNS while the CA validates, and removes it after", async () => {
			const dns = new ObservedDns(powerDns());
			const issuer = newIssuer({ deps: deps({ "tenant-dns": dns }) });
			const base = uniqueHost("shop");
			const hostnames = [base, `*.${base}`, `www.${base}`];

			const issued = await issuer.issue({ tenantId: "ten_dns", regionId: EU, hostnames });

			await verifiedPath(issued.chainPem, await anchorCerts(issuer));
			const baseRecord = `_acme-challenge.${base}`;
			const wwwRecord = `_acme-challenge.www.${base}`;
			const upserts = dns.events.filter((e) => e.op === "upsert");
			const removes = dns.events.filter((e) => e.op === "remove");
			// The name and its wildcard share one record name: one set holding both values.
			expect(upserts.map((e) => [e.name, e.values?.length]).sort()).toEqual([
				[baseRecord, 2],
				[wwwRecord, 1],
			]);
			for (const upsert of upserts) {
				for (const value of upsert.values ?? []) expect(value).toMatch(/^[A-Za-z0-9_-]{43}$/);
				// Served by PowerDNS before the CA was asked to look...
				expect([...upsert.served].sort()).toEqual([...(upsert.values ?? [])].sort());
			}
			// ...and still served when the CA had validated and issued: removal comes last.
			expect(dns.events.slice(0, 2).map((e) => e.op)).toEqual(["upsert", "upsert"]);
			expect(removes.map((e) => e.name).sort()).toEqual([baseRecord, wwwRecord]);
			for (const remove of removes) {
				const upsert = upserts.find((u) => u.name === remove.name);
				expect([...remove.served].sort()).toEqual([...(upsert?.values ?? [])].sort());
			}
			expect(await pdns.query(baseRecord, "TXT")).toEqual([]);
			expect(await pdns.query(wwwRecord, "TXT")).toEqual([]);
			const left = (await powerDns().list(ZONE)).filter((r) => r.name.includes(base));
			expect(left).toEqual([]);
		});

		it("removes the records when the CA cannot validate them, and names the hostname", async () => {
			const dns = new ObservedDns(powerDns(), { tamper: true });
			const issuer = newIssuer({ deps: deps({ "tenant-dns": dns }) });
			const host = uniqueHost("tampered");

			const error = await issuerError(
				issuer.issue({ tenantId: "ten_bad", regionId: EU, hostnames: [host] }),
			);

			expect(error.message).toContain(
				`the CA could not validate ${host} through _acme-challenge.${host}`,
			);
			expect(error.hostname).toBe(host);
			// A wrong or stale TXT is usually propagation: the job may retry.
			expect(error.retryable).toBe(true);
			expect(dns.events.map((e) => e.op)).toEqual(["upsert", "remove"]);
			expect(dns.events[0]?.served).toEqual(["not-the-key-authorization"]);
			expect(await pdns.query(`_acme-challenge.${host}`, "TXT")).toEqual([]);
		});

		it("reports a DNS provider that cannot be reached as retryable, naming it", async () => {
			const unreachable = new PowerDnsProvider({
				apiUrl: "http://127.0.0.1:9", // discard port: nothing listens
				apiKey: "k",
				zones: [ZONE],
				capabilities,
				timeoutMs: 500,
			});
			const issuer = newIssuer({ deps: deps({ "tenant-dns": unreachable }) });
			const host = uniqueHost("nodns");

			const error = await issuerError(
				issuer.issue({ tenantId: "ten_nodns", regionId: EU, hostnames: [host] }),
			);

			expect(error.retryable).toBe(true);
			expect(error.hostname).toBe(host);
			expect(error.message).toContain(
				`cannot publish the challenge record _acme-challenge.${host} through dns provider "tenant-dns"`,
			);
		});

		it("refuses a name outside the DNS provider's zones without publishing anything", async () => {
			const dns = new ObservedDns(powerDns());
			const issuer = newIssuer({ deps: deps({ "tenant-dns": dns }) });

			const error = await issuerError(
				issuer.issue({ tenantId: "ten_zone", regionId: EU, hostnames: ["shop.other.test"] }),
			);

			expect(error.retryable).toBe(false);
			expect(error.hostname).toBe("shop.other.test");
			expect(error.message).toMatch(/outside every zone this provider serves \(acme\.test\)/);
			expect(dns.events.filter((e) => e.op === "remove")).toEqual([]);
		});

		it("waits until the configured name servers serve the record, and gives up at the deadline", async () => {
			const settings = pebbleSettings({
				propagationNameservers: [pdns.dnsAddress],
				propagationTimeoutMs: 2_000,
			});
			const ok = newIssuer({ deps: deps({ "tenant-dns": powerDns() }), settings });
			const issued = await ok.issue({
				tenantId: "ten_prop",
				regionId: EU,
				hostnames: [uniqueHost("prop")],
			});
			await verifiedPath(issued.chainPem, await anchorCerts(ok));

			// A provider that accepts the record but never serves it; time moves only when the issuer waits.
			let now = Date.now();
			const waits: number[] = [];
			const poll: PollOptions = {
				initialMs: 250,
				maxMs: 1_000,
				wait: async (ms) => {
					waits.push(ms);
					now += ms;
				},
			};
			const clock = { now: () => new Date(now) };
			const dropping = new ObservedDns(powerDns(), { drop: true });
			const host = uniqueHost("unseen");
			// Constructed directly to inject the poll; the factory uses the real one.
			const polled = new AcmeIssuer({
				name: "pebble",
				settings: acmeSettingsSchema.parse(settings),
				capabilities,
				deps: deps({ "tenant-dns": dropping }, clock),
				poll,
			});
			issuers.push(polled);

			const error = await issuerError(
				polled.issue({ tenantId: "ten_unseen", regionId: EU, hostnames: [host] }),
			);

			expect(error.retryable).toBe(true);
			expect(error.message).toBe(
				`the challenge record _acme-challenge.${host} is not visible at ${pdns.dnsAddress} after 2000 ms`,
			);
			expect(waits).toEqual([250, 500, 1_000, 250]);
			expect(dropping.events.map((e) => e.op)).toEqual(["upsert", "remove"]);
		});
	});

	describe("the account", () => {
		it("is created once per (issuer, region), sealed, and reused by another node", async () => {
			const counting = countingBox(secrets);
			const nodeA = newIssuer({
				deps: { ...deps({ "tenant-dns": new OneAtATime(powerDns()) }), secrets: counting.box },
			});
			// Three first issuances at once in one process: one key, one registration.
			await Promise.all(
				["a", "b", "c"].map((t) =>
					nodeA.issue({ tenantId: `ten_${t}`, regionId: EU, hostnames: [uniqueHost(t)] }),
				),
			);
			expect(counting.seals()).toBe(1);
			const [row, ...others] = await accountRows();
			if (!row) throw new Error("no account row");
			expect(others).toEqual([]);
			expect(row.id).toBe(acmeAccountId("pebble", EU));
			expect(row.id).toBe("pebble:eu-central");
			expect(row.directoryUrl).toBe(pebble.directoryUrl);
			expect(row.accountUrl).toMatch(new RegExp(`^${new URL(pebble.directoryUrl).origin}/`));
			expect(row.privateKeyCiphertext).not.toContain("PRIVATE KEY");

			// Sealed to this row: it opens with its own binding to a P-256 key, and with no other.
			const pkcs8 = await secrets.open(row.privateKeyCiphertext, acmeAccountKeyBinding(EU, row.id));
			const key = await crypto.subtle.importKey(
				"pkcs8",
				new Uint8Array(pkcs8),
				{ name: "ECDSA", namedCurve: "P-256" },
				false,
				["sign"],
			);
			expect(key.algorithm).toMatchObject({ name: "ECDSA", namedCurve: "P-256" });
			await expect(
				secrets.open(row.privateKeyCiphertext, acmeAccountKeyBinding(US, row.id)),
			).rejects.toThrow();

			// Another node on the same database uses the stored account: no new key, no new account.
			const otherStore = await openStore(createClient, temp.locations);
			try {
				const otherCounting = countingBox(secrets);
				const nodeB = newIssuer({
					deps: {
						store: otherStore,
						secrets: otherCounting.box,
						clock: systemClock,
						providers: dnsAccess({ "tenant-dns": powerDns() }),
					},
				});
				await nodeB.issue({ tenantId: "ten_b", regionId: EU, hostnames: [uniqueHost("b")] });
				expect(otherCounting.seals()).toBe(0);
				expect(await accountRows()).toEqual([row]);
			} finally {
				otherStore.close();
			}

			// Another region, or another issuer name, is another account with its own key.
			await nodeA.issue({ tenantId: "ten_us", regionId: US, hostnames: [uniqueHost("us")] });
			const other = newIssuer({ name: "pebble-2", deps: deps({ "tenant-dns": powerDns() }) });
			await other.issue({ tenantId: "ten_o", regionId: EU, hostnames: [uniqueHost("o")] });
			const [usRow] = await temp.store.region(US).db.select().from(acmeAccounts);
			const euRows = await accountRows();
			expect(usRow?.id).toBe("pebble:us-east");
			expect(euRows.map((r) => r.id).sort()).toEqual(["pebble-2:eu-central", "pebble:eu-central"]);
			const accountUrls = new Set([usRow?.accountUrl, ...euRows.map((r) => r.accountUrl)]);
			expect(accountUrls.size).toBe(3);
		});
	});

	describe("a lost account", () => {
		it("is registered again with the same key when the CA no longer knows it", async () => {
			const first = newIssuer({ deps: deps({ "tenant-dns": powerDns() }) });
			await first.issue({ tenantId: "ten_l", regionId: EU, hostnames: [uniqueHost("l")] });
			const [before] = await accountRows();
			if (!before?.accountUrl) throw new Error("no account registered");
			// As if the CA had been reset: the stored account URL points at nothing.
			const lost = before.accountUrl.replace(/[^/]+$/, "999999");
			await temp.store.region(EU).db.update(acmeAccounts).set({ accountUrl: lost });

			const restarted = newIssuer({ deps: deps({ "tenant-dns": powerDns() }) });
			const issued = await restarted.issue({
				tenantId: "ten_l",
				regionId: EU,
				hostnames: [uniqueHost("l")],
			});

			await verifiedPath(issued.chainPem, await anchorCerts(restarted));
			const [after] = await accountRows();
			// newAccount with the same key finds the CA's existing account for it.
			expect(after?.accountUrl).toBe(before.accountUrl);
			expect(after?.privateKeyCiphertext).toBe(before.privateKeyCiphertext);
		});
	});

	describe("External Account Binding", () => {
		const hmacKey = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
		let eabPebble: PebbleServer;

		beforeAll(async () => {
			eabPebble = await startPebble({
				dnsServer: pdns.dnsAddress,
				externalAccountMacKeys: { "kid-castellan": hmacKey },
			});
		});
		afterAll(async () => {
			await eabPebble?.stop();
		});

		const eabSettings = (eab?: unknown) => ({
			directoryUrl: eabPebble.directoryUrl,
			dnsProvider: "tenant-dns",
			trustedRootsPem: eabPebble.tlsCaPem,
			trustAnchorUrl: `${eabPebble.managementUrl}/roots/0`,
			...(eab ? { eab } : {}),
		});

		it("issues with the right kid and HMAC key, read from the environment", async () => {
			const issuer = newIssuer({
				settings: eabSettings({ kid: "kid-castellan", hmacKey: { env: "ACME_EAB_HMAC" } }),
				deps: { ...deps({ "tenant-dns": powerDns() }), env: { ACME_EAB_HMAC: hmacKey } },
			});

			const issued = await issuer.issue({
				tenantId: "ten_eab",
				regionId: EU,
				hostnames: [uniqueHost("eab")],
			});

			const root = new x509.X509Certificate(await eabPebble.rootsPem());
			await verifiedPath(issued.chainPem, [root]);
			// The suite's other Pebble has another root: the chain really is this CA's.
			const otherRoot = new x509.X509Certificate(await pebble.rootsPem());
			await expect(verifiedPath(issued.chainPem, [otherRoot])).rejects.toThrow(/trust anchor/);
			const [row] = await accountRows();
			expect(row?.accountUrl).toMatch(new RegExp(`^${new URL(eabPebble.directoryUrl).origin}/`));
		});

		it("fails cleanly without EAB: not retryable, says to configure it, no account stored", async () => {
			const issuer = newIssuer({
				settings: eabSettings(),
				deps: deps({ "tenant-dns": powerDns() }),
			});

			const error = await issuerError(
				issuer.issue({ tenantId: "ten_noeab", regionId: EU, hostnames: [uniqueHost("noeab")] }),
			);

			expect(error.retryable).toBe(false);
			expect(error.message).toMatch(
				/^the CA requires External Account Binding: set settings\.eab \(kid and hmacKey from the CA\): /,
			);
			const [row] = await accountRows();
			expect(row?.accountUrl).toBeNull();
		});

		it("fails cleanly with a wrong HMAC key, which never appears in the message", async () => {
			const wrong = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
			const issuer = newIssuer({
				settings: eabSettings({ kid: "kid-castellan", hmacKey: wrong }),
				deps: deps({ "tenant-dns": powerDns() }),
			});

			const error = await issuerError(
				issuer.issue({ tenantId: "ten_wrong", regionId: EU, hostnames: [uniqueHost("wrong")] }),
			);

			expect(error.retryable).toBe(false);
			expect(error.message).toMatch(
				/refused the request \(unauthorized\): external account binding/,
			);
			expect(error.message).not.toContain(wrong);
			expect(error.message).not.toContain(hmacKey);
		});

		it("keeps the account key but registers anew when the directory changes", async () => {
			const first = newIssuer({ deps: deps({ "tenant-dns": powerDns() }) });
			await first.issue({ tenantId: "ten_m", regionId: EU, hostnames: [uniqueHost("m")] });
			const [before] = await accountRows();

			const moved = newIssuer({
				settings: eabSettings({ kid: "kid-castellan", hmacKey }),
				deps: deps({ "tenant-dns": powerDns() }),
			});
			await moved.issue({ tenantId: "ten_m", regionId: EU, hostnames: [uniqueHost("m")] });
			const [after, ...rest] = await accountRows();

			expect(rest).toEqual([]);
			expect(after?.privateKeyCiphertext).toBe(before?.privateKeyCiphertext);
			expect(after?.directoryUrl).toBe(eabPebble.directoryUrl);
			expect(after?.accountUrl).toMatch(new RegExp(`^${new URL(eabPebble.directoryUrl).origin}/`));
		});

		it("stops creation when the HMAC key's environment variable is not set, naming it", () => {
			expect(() =>
				newIssuer({
					settings: eabSettings({ kid: "kid-castellan", hmacKey: { env: "ACME_EAB_UNSET" } }),
					deps: { ...deps({ "tenant-dns": powerDns() }), env: {} },
				}),
			).toThrow("settings.eab.hmacKey: environment variable ACME_EAB_UNSET is not set");
		});
	});

	describe("failures", () => {
		it("a CA that went down: retryable, naming the CA and the socket error", async () => {
			const shortLived = await startPebble({ dnsServer: pdns.dnsAddress });
			const dns = new ObservedDns(powerDns());
			const issuer = newIssuer({
				settings: {
					directoryUrl: shortLived.directoryUrl,
					dnsProvider: "tenant-dns",
					trustedRootsPem: shortLived.tlsCaPem,
				},
				deps: deps({ "tenant-dns": dns }),
			});
			await issuer.issue({ tenantId: "ten_down", regionId: EU, hostnames: [uniqueHost("up")] });
			await shortLived.stop();
			dns.events.length = 0;

			const error = await issuerError(
				issuer.issue({ tenantId: "ten_down", regionId: EU, hostnames: [uniqueHost("down")] }),
			);

			expect(error.retryable).toBe(true);
			expect(error.message).toBe(
				`cannot reach the ACME server ${new URL(shortLived.directoryUrl).origin}: ECONNREFUSED`,
			);
			expect(dns.events).toEqual([]);
		});

		it("a CA answering 503: retryable, with the CA's own explanation", async () => {
			const server = await problemServer(503, {
				type: "urn:ietf:params:acme:error:serverInternal",
				detail: "maintenance until 14:00",
			});
			try {
				const issuer = newIssuer({
					settings: { directoryUrl: `${server.url}/dir`, dnsProvider: "tenant-dns" },
					deps: deps({ "tenant-dns": powerDns() }),
				});

				const error = await issuerError(
					issuer.issue({ tenantId: "ten_503", regionId: EU, hostnames: [uniqueHost("busy")] }),
				);

				expect(error.retryable).toBe(true);
				expect(error.message).toBe(
					`the ACME server ${server.url} answered 503: maintenance until 14:00`,
				);
				expect(server.requests()).toBeGreaterThan(0);
			} finally {
				await server.close();
			}
		});

		it("a CA that accepts the connection but never answers: retryable, after requestTimeoutMs", async () => {
			const held: Socket[] = [];
			const silent = createNetServer((socket) => held.push(socket)); // accepts, never answers
			await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
			const { port } = silent.address() as AddressInfo;
			try {
				const issuer = newIssuer({
					settings: {
						directoryUrl: `http://127.0.0.1:${port}/dir`,
						dnsProvider: "tenant-dns",
						requestTimeoutMs: 1_000,
					},
					deps: deps({ "tenant-dns": powerDns() }),
				});

				const error = await issuerError(
					issuer.issue({ tenantId: "ten_slow", regionId: EU, hostnames: [uniqueHost("slow")] }),
				);

				expect(error.retryable).toBe(true);
				expect(error.message).toBe(
					`cannot reach the ACME server http://127.0.0.1:${port}: no answer within 1000 ms`,
				);
			} finally {
				for (const socket of held) socket.destroy();
				await new Promise((resolve) => silent.close(resolve));
			}
		});

		it("a name the CA refuses (rejectedIdentifier): not retryable, names it, publishes nothing", async () => {
			const dns = new ObservedDns(powerDns());
			const issuer = newIssuer({ deps: deps({ "tenant-dns": dns }) });

			const error = await issuerError(
				issuer.issue({ tenantId: "ten_blocked", regionId: EU, hostnames: [BLOCKED] }),
			);

			expect(error.retryable).toBe(false);
			expect(error.hostname).toBe(BLOCKED);
			expect(error.message).toMatch(new RegExp(`^the CA refused to issue for ${BLOCKED}: `));
			expect(dns.events).toEqual([]);
		});

		it("a CA whose TLS certificate is not trusted: not retryable, points at trustedRootsPem", async () => {
			const issuer = newIssuer({
				settings: { directoryUrl: pebble.directoryUrl, dnsProvider: "tenant-dns" },
				deps: deps({ "tenant-dns": powerDns() }),
			});

			const error = await issuerError(
				issuer.issue({ tenantId: "ten_tls", regionId: EU, hostnames: [uniqueHost("tls")] }),
			);

			expect(error.retryable).toBe(false);
			expect(error.message).toBe(
				`cannot trust the TLS certificate of the ACME server ${new URL(pebble.directoryUrl).origin} (DEPTH_ZERO_SELF_SIGNED_CERT): give its CA in settings.trustedRootsPem`,
			);
		});

		it("a region the store does not know: the store's own error, before the CA is asked", async () => {
			const server = await problemServer(500, {});
			try {
				const issuer = newIssuer({
					settings: { directoryUrl: `${server.url}/dir`, dnsProvider: "tenant-dns" },
					deps: deps({ "tenant-dns": powerDns() }),
				});
				const issuing = issuer.issue({
					tenantId: "ten_r",
					regionId: "mars-1",
					hostnames: [uniqueHost("r")],
				});
				await expect(issuing).rejects.not.toBeInstanceOf(IssuerError);
				await expect(issuing).rejects.toThrow(/unknown region "mars-1"/);
				expect(server.requests()).toBe(0);
			} finally {
				await server.close();
			}
		});

		it("a dnsProvider name that is not configured: not retryable, names the setting", async () => {
			const issuer = newIssuer({ deps: deps({ "other-dns": powerDns() }) });

			const error = await issuerError(
				issuer.issue({ tenantId: "ten_name", regionId: EU, hostnames: [uniqueHost("name")] }),
			);

			expect(error.retryable).toBe(false);
			expect(error.message).toBe('settings.dnsProvider: no dns provider named "tenant-dns"');
			expect(await accountRows()).toEqual([]);
		});
	});

	describe("trust anchors", () => {
		it("come from trustAnchorUrl (Pebble's root), from trustAnchorsPem, or are the public ones", async () => {
			const fromUrl = newIssuer({ deps: deps({}) });
			const pebbleRoot = new x509.X509Certificate(await pebble.rootsPem());
			const [fetched, ...more] = await anchorCerts(fromUrl);
			expect(more).toEqual([]);
			expect(fetched?.equal(pebbleRoot)).toBe(true);

			const fromPem = newIssuer({
				settings: {
					directoryUrl: pebble.directoryUrl,
					dnsProvider: "tenant-dns",
					trustAnchorsPem: pebbleRoot.toString("pem"),
				},
				deps: deps({}),
			});
			expect(await fromPem.trustAnchors(US)).toEqual([pebbleRoot.toString("pem")]);

			const publicCa = newIssuer({
				settings: { directoryUrl: pebble.directoryUrl, dnsProvider: "tenant-dns" },
				deps: deps({}),
			});
			expect(await publicCa.trustAnchors(EU)).toEqual([]);
		});
	});
});

describe("acme issuer configuration", () => {
	let temp: TempStore;
	let secrets: SecretBox;

	beforeAll(async () => {
		temp = await createTempStore();
		secrets = await newSecretBox();
	});
	afterAll(() => temp.close());

	function build(settings: Record<string, unknown>, withProviders = true) {
		const declarations: Record<string, ProviderDeclaration> = {
			ca: { kind: "issuer", type: "acme", settings, capabilities },
		};
		return buildProviders(declarations, createNodeRegistry(), {
			store: temp.store,
			secrets,
			clock: systemClock,
			...(withProviders ? { providers: dnsAccess({}) } : {}),
		});
	}

	const valid = {
		directoryUrl: "https://acme.example.net/directory",
		dnsProvider: "tenant-dns",
	};

	it.each([
		[{ ...valid, colour: "blue" }, '$.providers.ca.settings: unknown field "colour"'],
		[{ dnsProvider: "tenant-dns" }, "$.providers.ca.settings.directoryUrl: is required (string)"],
		[
			{ ...valid, directoryUrl: "ftp://x" },
			"$.providers.ca.settings.directoryUrl: must be an http(s) URL",
		],
		[{ directoryUrl: valid.directoryUrl }, "$.providers.ca.settings.dnsProvider: is required"],
		[{ ...valid, email: "nope" }, "$.providers.ca.settings.email: "],
		[
			{ ...valid, trustedRootsPem: "not pem" },
			"$.providers.ca.settings.trustedRootsPem: must hold one or more PEM certificates",
		],
		[
			{
				...valid,
				trustAnchorsPem: undefined,
				trustAnchorUrl: "https://x/roots",
				eab: { kid: "k" },
			},
			'$.providers.ca.settings.eab.hmacKey: must be a string or { env: "VARIABLE_NAME" }',
		],
	])("refuses bad settings, naming the field: %j", (settings, message) => {
		expect(() => build(settings)).toThrow(ProviderBuildError);
		expect(() => build(settings)).toThrow(message);
	});

	it("refuses both trustAnchorsPem and trustAnchorUrl", async () => {
		const root = await x509.X509CertificateGenerator.createSelfSigned({
			serialNumber: "01",
			name: "CN=r",
			keys: (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
				"sign",
				"verify",
			])) as CryptoKeyPair,
			signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
		});
		expect(() =>
			build({ ...valid, trustAnchorsPem: root.toString("pem"), trustAnchorUrl: "https://x/r" }),
		).toThrow(
			"$.providers.ca.settings.trustAnchorUrl: give trustAnchorsPem or trustAnchorUrl, not both",
		);
	});

	it("reaches its DNS provider through the platform's own lookup when none is handed in", () => {
		// buildProviders hands each provider the lookup of the providers it builds.
		const providers = build(valid, false);
		expect(providers.get("issuer", "ca")).toBeDefined();
		expect(() => providers.get("dns", "tenant-dns")).toThrow(
			/no provider named "tenant-dns" is configured/,
		);
	});

	it("is registered only in the Node registry: the runtime-neutral one does not know it", () => {
		expect(createNodeRegistry().get("issuer", "acme")).toBe(acmeIssuerFactory);
		expect(createNodeRegistry().types("issuer")).toEqual(
			expect.arrayContaining([...createDefaultRegistry().types("issuer"), "acme"]),
		);
		expect(createDefaultRegistry().get("issuer", "acme")).toBeUndefined();
		expect(acmeIssuerFactory.endpointSettings).toEqual(["directoryUrl", "trustAnchorUrl"]);
	});
});

/** Counts seals: a new account key is sealed exactly once, when it is created. */
function countingBox(inner: SecretBox): { box: SecretBox; seals(): number } {
	let seals = 0;
	return {
		box: {
			seal(plaintext, binding) {
				seals++;
				return inner.seal(plaintext, binding);
			},
			open: (ciphertext, binding) => inner.open(ciphertext, binding),
			openText: (ciphertext, binding) => inner.openText(ciphertext, binding),
		},
		seals: () => seals,
	};
}

/** An HTTP server answering every request with `status` and an RFC 7807 problem body. */
async function problemServer(status: number, problem: object) {
	let requests = 0;
	const server: Server = createServer((_req, res) => {
		requests++;
		res.writeHead(status, { "content-type": "application/problem+json", "retry-after": "120" });
		res.end(JSON.stringify({ ...problem, status }));
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const { port } = server.address() as AddressInfo;
	return {
		url: `http://127.0.0.1:${port}`,
		requests: () => requests,
		close: () => new Promise<void>((resolve) => server.close(() => resolve())),
	};
}
