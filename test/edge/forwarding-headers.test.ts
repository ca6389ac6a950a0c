import { describe, expect, it } from "vitest";
import { forwardingHeaders, HeaderFilter } from "../../edge/core/forwarding-headers";
import { requestIdFor } from "../../edge/core/request-id";

describe("HeaderFilter", () => {
	it("drops hop-by-hop headers, the ones Connection names and Proxy-*", () => {
		const filter = new HeaderFilter(["keep-alive, X-Hop", "x-other-hop"], "request");
		for (const name of [
			"connection",
			"keep-alive",
			"te",
			"trailer",
			"transfer-encoding",
			"upgrade",
			"x-hop",
			"x-other-hop",
			"proxy-authorization",
			"proxy-connection",
		]) {
			expect(filter.keeps(name), name).toBe(false);
		}
		for (const name of ["accept", "cookie", "authorization", "content-length"])
			expect(filter.keeps(name), name).toBe(true);
	});

	it("drops client-supplied forwarding headers from requests but keeps them in responses", () => {
		const request = new HeaderFilter(undefined, "request");
		const response = new HeaderFilter(undefined, "response");
		for (const name of [
			"x-forwarded-for",
			"forwarded",
			"x-forwarded-host",
			"host",
			"x-request-id",
		]) {
			expect(request.keeps(name), name).toBe(false);
		}
		expect(response.keeps("x-forwarded-for")).toBe(true);
		expect(response.keeps("x-request-id")).toBe(false);
	});
});

describe("forwardingHeaders", () => {
	it("writes X-Forwarded-* and Forwarded, quoting IPv6 and the host", () => {
		const v4 = Object.fromEntries(
			forwardingHeaders({
				clientIp: "::ffff:192.0.2.7",
				authority: "a.test:8443",
				proto: "https",
				requestId: "r",
			}),
		);
		expect(v4).toEqual({
			host: "a.test:8443",
			"x-forwarded-for": "192.0.2.7",
			"x-forwarded-proto": "https",
			"x-forwarded-host": "a.test:8443",
			forwarded: 'for=192.0.2.7;host="a.test:8443";proto=https',
			"x-request-id": "r",
		});
		const v6 = Object.fromEntries(
			forwardingHeaders({
				clientIp: "2001:db8::1",
				authority: "a.test",
				proto: "https",
				requestId: "r",
			}),
		);
		expect(v6.forwarded).toBe('for="[2001:db8::1]";host="a.test";proto=https');
	});
});

describe("requestIdFor", () => {
	it("keeps a well-formed incoming id and replaces anything else", () => {
		expect(requestIdFor("req-0123456789abcdef", () => "new")).toBe("req-0123456789abcdef");
		for (const bad of [
			undefined,
			"",
			"short",
			"has space in it",
			"x".repeat(129),
			"inject\r\nx: y-12345",
		]) {
			expect(requestIdFor(bad, () => "new")).toBe("new");
		}
		expect(requestIdFor(undefined)).toMatch(/^[0-9a-f-]{36}$/);
	});
});
