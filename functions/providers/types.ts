import type { ProviderKind } from "../../db/schema/region/provider-bindings";

export type { ProviderKind };
export const PROVIDER_KINDS: readonly ProviderKind[] = ["dns", "issuer", "storage", "relay"];

/**
 * Where a provider keeps and processes what it is given. A jurisdiction code ("EU", "US"),
 * "regional" for embedded providers that work only inside the region that runs them (the
 * region's own database, its own CA key), or "global" for a provider with no such promise.
 */
export type Jurisdiction = string;

export interface Capabilities {
	jurisdiction: Jurisdiction;
	/** True when the customer, not the platform, operates the provider and holds its credentials. */
	customerControlled: boolean;
	[extra: string]: unknown;
}

export interface DnsCapabilities extends Capabilities {
	recordTypes: ReadonlyArray<"A" | "AAAA" | "CNAME" | "TXT">;
	wildcard: boolean;
	minTtl: number;
}

export type DnsRecordType = "A" | "AAAA" | "CNAME" | "TXT";

export interface DnsRecordSet {
	/** Fully qualified, lower case, no trailing dot. */
	name: string;
	type: DnsRecordType;
	ttl: number;
	values: string[];
}

export interface DnsProvider {
	readonly capabilities: DnsCapabilities;
	/**
	 * Creates or replaces the whole record set (name, type). Idempotent. A TTL below
	 * `capabilities.minTtl` is raised to it (the closest the provider can do), never refused.
	 */
	upsert(record: DnsRecordSet): Promise<void>;
	/** Removes the record set (name, type); removing what is absent is not an error. */
	remove(name: string, type: DnsRecordType): Promise<void>;
	/** Record sets this provider manages under `zone` (or everywhere it serves when omitted). */
	list(zone?: string): Promise<DnsRecordSet[]>;
	/** The zones it serves, so a hostname outside them is refused up front; absent = any name. */
	readonly zones?: readonly string[];
}

export interface IssuedCertificate {
	/** Leaf first, then intermediates, PEM. */
	chainPem: string;
	/** PKCS#8 PEM of the leaf key: callers encrypt it before it touches a database. */
	privateKeyPem: string;
	serial: string;
	notBefore: Date;
	notAfter: Date;
}

export interface IssueRequest {
	tenantId: string;
	regionId: string;
	hostnames: string[];
}

/** The CA's suggested renewal window for one certificate (ACME Renewal Information, RFC 9773). */
export interface RenewalWindow {
	start: Date;
	end: Date;
	/** When to ask again (the CA's Retry-After), if it said. */
	retryAfter?: Date;
	/** A page explaining an early window (e.g. a revocation incident). */
	explanationUrl?: string;
}

/** What the renewal job knows of a stored certificate. */
export interface StoredCertificate {
	chainPem: string;
	serial: string;
	notBefore: Date;
	notAfter: Date;
}

export interface CertificateIssuer {
	readonly capabilities: Capabilities;
	issue(request: IssueRequest): Promise<IssuedCertificate>;
	/** PEM roots a client must trust to verify what this issuer signs for `regionId`. */
	trustAnchors(regionId: string): Promise<string[]>;
	/**
	 * Optional: the CA's renewal window for `certificate`, for issuers whose CA offers ARI
	 * (`fetchRenewalWindow` in functions/jobs/acme-renewal-info.ts does the lookup). Undefined
	 * when the CA has none for it; the renewal job then renews when a third of the lifetime remains.
	 */
	renewalWindow?(certificate: StoredCertificate): Promise<RenewalWindow | undefined>;
}

/** Where keys and certificates rest. The regional default is the region's own database. */
export interface StorageProvider {
	readonly capabilities: Capabilities;
}

/** How the edge reaches the data plane. The default relays directly to instance URLs. */
export interface RelayProvider {
	readonly capabilities: Capabilities;
	/** The URL the edge should connect to for an instance URL. */
	target(instanceUrl: string): string;
}

export interface ProviderByKind {
	dns: DnsProvider;
	issuer: CertificateIssuer;
	storage: StorageProvider;
	relay: RelayProvider;
}
