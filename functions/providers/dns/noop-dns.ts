import { z } from "zod";
import type { ProviderFactory } from "../registry";
import type {
	Capabilities,
	DnsCapabilities,
	DnsProvider,
	DnsRecordSet,
	DnsRecordType,
} from "../types";

const ALL_RECORD_TYPES: readonly DnsRecordType[] = ["A", "AAAA", "CNAME", "TXT"];

/**
 * DNS for names that already resolve to this machine (`*.localhost`, RFC 6761): nothing is sent
 * anywhere. It remembers what it was asked, so `list` answers like a real provider and callers
 * (provisioning, failover) run the same code path on a laptop as against PowerDNS.
 */
export class NoopDnsProvider implements DnsProvider {
	readonly capabilities: DnsCapabilities;
	readonly #records = new Map<string, DnsRecordSet>();

	constructor(capabilities: Capabilities) {
		// What this provider can do is a fact of the code; jurisdiction and ownership come from config.
		this.capabilities = {
			...capabilities,
			recordTypes: ALL_RECORD_TYPES,
			wildcard: true,
			minTtl: 1,
		};
	}

	async upsert(record: DnsRecordSet): Promise<void> {
		assertValidRecordSet(record, this.capabilities);
		// Stored as a DNS server answers: TTL raised to the floor, IPv6 in canonical form.
		const ttl = Math.max(record.ttl, this.capabilities.minTtl);
		const values = record.type === "AAAA" ? record.values.map(canonicalIpv6) : [...record.values];
		this.#records.set(recordKey(record.name, record.type), { ...record, ttl, values });
	}

	async remove(name: string, type: DnsRecordType): Promise<void> {
		this.#records.delete(recordKey(name, type));
	}

	async list(zone?: string): Promise<DnsRecordSet[]> {
		const out: DnsRecordSet[] = [];
		for (const record of this.#records.values()) {
			if (zone === undefined || isInZone(record.name, zone)) {
				out.push({ ...record, values: [...record.values] });
			}
		}
		return out;
	}
}

export const noopDnsFactory: ProviderFactory<"dns"> = {
	kind: "dns",
	type: "noop",
	settingsSchema: z.strictObject({}),
	endpointSettings: [],
	create: ({ capabilities }) => new NoopDnsProvider(capabilities),
};

function recordKey(name: string, type: DnsRecordType): string {
	return `${type} ${name}`;
}

function isInZone(name: string, zone: string): boolean {
	return name === zone || name.endsWith(`.${zone}`);
}

const DNS_LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** Refuses what a real DNS server would refuse, so the noop provider never hides a caller's bug. */
function assertValidRecordSet(record: DnsRecordSet, capabilities: DnsCapabilities): void {
	const where = `${record.type} ${record.name}`;
	if (!capabilities.recordTypes.includes(record.type)) {
		throw new Error(`${where}: record type ${record.type} is not supported by this provider`);
	}
	if (!isRecordName(record.name, capabilities.wildcard)) {
		throw new Error(`${where}: not a lower-case DNS name without a trailing dot`);
	}
	if (!Number.isInteger(record.ttl) || record.ttl < 0) {
		throw new Error(`${where}: ttl must be a non-negative integer, got ${record.ttl}`);
	}
	if (record.values.length === 0) {
		throw new Error(`${where}: a record set needs at least one value (use remove to delete it)`);
	}
	if (record.type === "CNAME" && record.values.length !== 1) {
		throw new Error(`${where}: a CNAME record set has exactly one value`);
	}
	for (const value of record.values) {
		if (!isRecordValue(record.type, value)) {
			throw new Error(`${where}: ${JSON.stringify(value)} is not a valid ${record.type} value`);
		}
	}
}

function isRecordName(name: string, wildcard: boolean): boolean {
	const plain = wildcard && name.startsWith("*.") ? name.slice(2) : name;
	return (
		plain.length > 0 && plain.length <= 253 && plain.split(".").every((l) => DNS_LABEL.test(l))
	);
}

function isRecordValue(type: DnsRecordType, value: string): boolean {
	switch (type) {
		case "A":
			return IPV4.test(value);
		case "AAAA":
			return isIpv6(value);
		case "CNAME":
			return isRecordName(value, false);
		case "TXT":
			return value.length <= 4096;
	}
}

/** The URL parser does the RFC 4291 parsing (and RFC 5952 printing) without a Node import. */
function isIpv6(value: string): boolean {
	if (!value.includes(":") || value.includes("]") || value.includes("%")) return false;
	try {
		new URL(`http://[${value}]/`);
		return true;
	} catch {
		return false;
	}
}

function canonicalIpv6(value: string): string {
	return new URL(`http://[${value}]/`).hostname.slice(1, -1);
}
