import { z } from "zod";
import type { ProviderFactory } from "../registry";
import type {
	Capabilities,
	DnsCapabilities,
	DnsProvider,
	DnsRecordSet,
	DnsRecordType,
} from "../types";
import { ALL_RECORD_TYPES, assertRecordKey, isInZone, normalizedRecordSet } from "./record-set";

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
		// Refused and stored exactly as PowerDNS or Cloudflare would: the same shared rules.
		const set = normalizedRecordSet(record, this.capabilities);
		this.#records.set(recordKey(set.name, set.type), set);
	}

	async remove(name: string, type: DnsRecordType): Promise<void> {
		assertRecordKey(name, type, this.capabilities.wildcard);
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
