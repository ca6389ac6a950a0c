import { z } from "zod";
import type { DnsCapabilities, DnsRecordSet, DnsRecordType } from "../types";
import { DnsProviderError } from "./dns-provider-error";

/** Rules and wire formats shared by the DNS providers that talk to a real server. */

export const ALL_RECORD_TYPES: readonly DnsRecordType[] = ["A", "AAAA", "CNAME", "TXT"];

const DNS_LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
/** RFC 1035 3.3.14: one TXT character-string holds at most 255 octets. */
const TXT_CHUNK_BYTES = 255;

/** A zone in provider settings: lower case, no trailing dot. */
export const zoneNameSchema = z
	.string()
	.regex(
		/^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?)*$/,
		"must be a lower-case DNS name without a trailing dot",
	);

export function isInZone(name: string, zone: string): boolean {
	return name === zone || name.endsWith(`.${zone}`);
}

/** The most specific of `zones` that holds `name`; a name outside all of them is refused. */
export function servingZone(name: string, zones: readonly string[]): string {
	let best: string | undefined;
	for (const zone of zones) {
		if (isInZone(name, zone) && (best === undefined || zone.length > best.length)) best = zone;
	}
	if (best === undefined) {
		throw new DnsProviderError(
			"outside_zones",
			`${name} is outside every zone this provider serves (${zones.join(", ")})`,
		);
	}
	return best;
}

/**
 * The served zones a `list(zone)` must read: the most specific one holding `zone`, and every
 * served zone under `zone`; none when `zone` and the served zones do not overlap.
 */
export function zonesToList(zone: string | undefined, zones: readonly string[]): string[] {
	if (zone === undefined) return [...zones];
	const out = zones.filter((z) => isInZone(z, zone));
	const holding = zones.filter((z) => isInZone(zone, z));
	if (!zones.includes(zone) && holding.length > 0) out.push(servingZone(zone, holding));
	return out;
}

/**
 * Refuses what a real DNS server would refuse and what the provider said it cannot do, and
 * returns the set as the server will answer it: TTL raised to the floor, values de-duplicated,
 * IPv6 in canonical form, CNAME targets in lower case.
 */
export function normalizedRecordSet(
	record: DnsRecordSet,
	capabilities: DnsCapabilities,
): DnsRecordSet {
	const where = `${record.type} ${record.name}`;
	const invalid = (rule: string) => new DnsProviderError("invalid_record", `${where}: ${rule}`);
	if (!capabilities.recordTypes.includes(record.type)) {
		throw invalid(`record type ${record.type} is not supported by this provider`);
	}
	if (!isRecordName(record.name, capabilities.wildcard)) {
		throw invalid("not a lower-case DNS name without a trailing dot");
	}
	if (!Number.isInteger(record.ttl) || record.ttl < 0) {
		throw invalid(`ttl must be a non-negative integer, got ${record.ttl}`);
	}
	if (!Array.isArray(record.values) || record.values.length === 0) {
		throw invalid("a record set needs at least one value (use remove to delete it)");
	}
	if (record.type === "CNAME" && record.values.length !== 1) {
		throw invalid("a CNAME record set has exactly one value");
	}
	for (const value of record.values) {
		if (typeof value !== "string" || !isRecordValue(record.type, value)) {
			throw invalid(`${JSON.stringify(value)} is not a valid ${record.type} value`);
		}
	}
	const values = [...new Set(record.values.map((v) => normalizedValue(record.type, v)))];
	return {
		name: record.name,
		type: record.type,
		ttl: Math.max(record.ttl, capabilities.minTtl),
		values,
	};
}

/** Checks the (name, type) a `remove` was given, with the same rules as an upsert. */
export function assertRecordKey(name: string, type: DnsRecordType, wildcard: boolean): void {
	if (!ALL_RECORD_TYPES.includes(type)) {
		throw new DnsProviderError("invalid_record", `${type} ${name}: unknown record type ${type}`);
	}
	if (!isRecordName(name, wildcard)) {
		throw new DnsProviderError(
			"invalid_record",
			`${type} ${name}: not a lower-case DNS name without a trailing dot`,
		);
	}
}

export function normalizedValue(type: DnsRecordType, value: string): string {
	switch (type) {
		case "AAAA":
			return canonicalIpv6(value);
		case "CNAME":
			return value.toLowerCase().replace(/\.$/, "");
		default:
			return value;
	}
}

/**
 * A value as the server stores it (presentation form) back in the shape callers upsert:
 * IPv6 canonical, CNAME target without the trailing dot, TXT strings unquoted and joined.
 */
export function valueFromContent(type: DnsRecordType, content: string): string {
	switch (type) {
		case "AAAA":
			return canonicalIpv6(content);
		case "TXT":
			return decodeTxt(content);
		default:
			return normalizedValue(type, content);
	}
}

function isRecordName(name: string, wildcard: boolean): boolean {
	if (typeof name !== "string") return false;
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

export function canonicalIpv6(value: string): string {
	return new URL(`http://[${value}]/`).hostname.slice(1, -1);
}

/**
 * A TXT value in zone-file presentation (RFC 1035 5.1): quoted character-strings of at most
 * 255 octets each, `"` and `\` escaped, bytes outside printable ASCII as `\DDD`.
 */
export function encodeTxt(value: string): string {
	const bytes = new TextEncoder().encode(value);
	const chunks: string[] = [];
	for (let start = 0; start === 0 || start < bytes.length; start += TXT_CHUNK_BYTES) {
		let chunk = "";
		for (const b of bytes.subarray(start, start + TXT_CHUNK_BYTES)) {
			if (b === 0x22 || b === 0x5c) chunk += `\\${String.fromCharCode(b)}`;
			else if (b >= 0x20 && b < 0x7f) chunk += String.fromCharCode(b);
			else chunk += `\\${b.toString().padStart(3, "0")}`;
		}
		chunks.push(`"${chunk}"`);
	}
	return chunks.join(" ");
}

/**
 * The value of a TXT record in presentation form, its character-strings joined. Content that
 * is not quoted (written by a tool that stored the bare text) is taken as it is.
 */
export function decodeTxt(content: string): string {
	const trimmed = content.trim();
	if (!trimmed.startsWith('"')) return content;
	// Code points, not UTF-16 units, so a character outside the BMP stays whole.
	const text = [...trimmed];
	const bytes: number[] = [];
	const encoder = new TextEncoder();
	let inString = false;
	for (let i = 0; i < text.length; i++) {
		const ch = text[i] as string;
		if (!inString) {
			if (ch === '"') inString = true;
			continue;
		}
		if (ch === '"') {
			inString = false;
		} else if (ch === "\\") {
			const digits = text.slice(i + 1, i + 4).join("");
			if (/^\d{3}$/.test(digits)) {
				bytes.push(Number(digits) & 0xff);
				i += 3;
			} else if (i + 1 < text.length) {
				bytes.push(...encoder.encode(text[i + 1] as string));
				i += 1;
			}
		} else {
			bytes.push(...encoder.encode(ch));
		}
	}
	return new TextDecoder().decode(new Uint8Array(bytes));
}
