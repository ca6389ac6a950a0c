import { describe, expect, it } from "vitest";
import {
	decodeTxt,
	encodeTxt,
	normalizedRecordSet,
	servingZone,
	valueFromContent,
	zonesToList,
} from "../../functions/providers/dns/record-set";
import type { DnsCapabilities } from "../../functions/providers/types";

const capabilities: DnsCapabilities = {
	jurisdiction: "EU",
	customerControlled: false,
	recordTypes: ["A", "AAAA", "CNAME", "TXT"],
	wildcard: true,
	minTtl: 60,
};

describe("DNS record sets shared by the HTTP providers", () => {
	it("quotes TXT values in presentation form: escapes, \\DDD for non-ASCII, 255-byte strings", () => {
		expect(encodeTxt("plain")).toBe('"plain"');
		expect(encodeTxt("")).toBe('""');
		expect(encodeTxt('a "b" \\c')).toBe('"a \\"b\\" \\\\c"');
		expect(encodeTxt("é")).toBe('"\\195\\169"');
		expect(encodeTxt("x".repeat(256))).toBe(`"${"x".repeat(255)}" "x"`);
	});

	it.each([
		["plain"],
		[""],
		['a "b" \\c'],
		["Zoë 🛡️ ünïcode"],
		["x".repeat(600)],
		[`${"é".repeat(200)}`],
	])("decodes what it encodes: %j", (value) => {
		expect(decodeTxt(encodeTxt(value))).toBe(value);
	});

	it("decodes what servers send: several strings, raw UTF-8, unquoted legacy content", () => {
		expect(decodeTxt('"v=spf1 " "-all"')).toBe("v=spf1 -all");
		expect(decodeTxt('"Zoë"')).toBe("Zoë");
		expect(decodeTxt("bare text")).toBe("bare text");
	});

	it("reads values back in the shape callers write them", () => {
		expect(valueFromContent("CNAME", "Target.Example.Test.")).toBe("target.example.test");
		expect(valueFromContent("AAAA", "2001:0db8:0000::0001")).toBe("2001:db8::1");
		expect(valueFromContent("A", "192.0.2.1")).toBe("192.0.2.1");
	});

	it("raises a TTL to the floor, de-duplicates values and canonicalises IPv6", () => {
		expect(
			normalizedRecordSet(
				{ name: "v6.example.test", type: "AAAA", ttl: 5, values: ["2001:DB8::1", "2001:db8:0::1"] },
				capabilities,
			),
		).toEqual({ name: "v6.example.test", type: "AAAA", ttl: 60, values: ["2001:db8::1"] });
	});

	it("picks the most specific served zone and refuses names outside all of them", () => {
		const zones = ["example.test", "tenants.example.test"];
		expect(servingZone("a.tenants.example.test", zones)).toBe("tenants.example.test");
		expect(servingZone("example.test", zones)).toBe("example.test");
		expect(() => servingZone("notexample.test", zones)).toThrow(
			"notexample.test is outside every zone this provider serves (example.test, tenants.example.test)",
		);
	});

	it("lists the served zones that hold or lie under the zone asked for", () => {
		const zones = ["example.test", "tenants.example.test", "other.test"];
		expect(zonesToList(undefined, zones)).toEqual(zones);
		expect(zonesToList("a.tenants.example.test", zones)).toEqual(["tenants.example.test"]);
		expect(zonesToList("example.test", zones)).toEqual(["example.test", "tenants.example.test"]);
		expect(zonesToList("test", zones)).toEqual(zones);
		expect(zonesToList("example.org", zones)).toEqual([]);
	});
});
