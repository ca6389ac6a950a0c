import { describe, expect, it } from "vitest";
import { decide, decideHttpsRedirect, type EdgeRequest } from "../../edge/core/decide";
import { buildRouteTable } from "../../edge/core/route-table";
import { EU, EU_WEST, host, instance, snapshot, US } from "./helpers/snapshots";

const table = buildRouteTable(
	snapshot(
		[
			host("eu.test", { tenantId: "eu-tenant", allowedRegions: ["eu-central", "eu-west"] }),
			host("alias.eu.test", { tenantId: "eu-tenant", allowedRegions: ["eu-central", "eu-west"] }),
			host("global.test", {
				tenantId: "global",
				allowedRegions: ["us-east", "eu-central"],
				allowedJurisdictions: ["US", "EU"],
			}),
			host("down.test", { tenantId: "down", allowedRegions: ["eu-west"] }),
			host("suspended.test", { tenantId: "s", status: "suspended" }),
			host("deleted.test", { tenantId: "d", status: "deleted" }),
			host("new.test", { tenantId: "n", status: "provisioning" }),
		],
		[
			instance("c1", EU),
			instance("c2", EU),
			instance("c3", EU),
			instance("w1", EU_WEST, { healthy: false }),
			instance("u1", US),
		],
	),
);

const get = (h: string | undefined, extra: Partial<EdgeRequest> = {}): EdgeRequest => ({
	host: h,
	method: "GET",
	target: "/",
	...extra,
});

describe("decide", () => {
	it("proxies to an instance of the home region, with the others as alternatives", () => {
		const d = decide(table, get("eu.test", { target: "/a/b?c=1" }), { random: () => 0.5 });
		expect(d).toMatchObject({
			kind: "proxy",
			tenantId: "eu-tenant",
			hostname: "eu.test",
			path: "/a/b?c=1",
		});
		if (d.kind !== "proxy") return;
		expect(d.instance.id).toBe("c2");
		expect(d.alternatives.map((i) => i.id)).toEqual(["c3", "c1"]);
	});

	it("spreads requests across the healthy instances of the preferred region", () => {
		const picks = [0, 0.34, 0.67, 0.999].map((r) => {
			const d = decide(table, get("eu.test"), { random: () => r });
			return d.kind === "proxy" ? d.instance.id : d.kind;
		});
		expect(picks).toEqual(["c1", "c2", "c3", "c3"]);
	});

	it("falls back to the next allowed region in order, listing it after the preferred one", () => {
		const d = decide(table, get("global.test"), { random: () => 0 });
		if (d.kind !== "proxy") throw new Error(`expected proxy, got ${d.status}`);
		expect(d.instance.id).toBe("u1");
		expect(d.alternatives.map((i) => i.id)).toEqual(["c1", "c2", "c3"]);
	});

	it("answers 503 with Retry-After, not an instance elsewhere, when no eligible instance is healthy", () => {
		// down.test may use eu-west only; its one instance is down while EU and US instances are up.
		expect(decide(table, get("down.test"), { retryAfterSeconds: 7 })).toEqual({
			kind: "reply",
			status: 503,
			code: "no_healthy_instance",
			message: "no healthy instance is available",
			retryAfter: 7,
		});
	});

	it("never picks a US instance for an EU tenant whose EU instances are all down", () => {
		const residency = buildRouteTable(
			snapshot(
				[host("eu-only.test")],
				[
					instance("eu1", EU, { healthy: false }),
					instance("eu2", EU, { healthy: false }),
					instance("us1", US),
				],
			),
		);
		for (const r of [0, 0.5, 0.99]) {
			const d = decide(residency, get("eu-only.test"), { random: () => r });
			expect(d).toMatchObject({ kind: "reply", status: 503, retryAfter: 5 });
		}
	});

	it.each([
		["suspended.test", 403, "tenant_suspended"],
		["deleted.test", 410, "tenant_deleted"],
		["new.test", 503, "tenant_not_ready"],
		["unknown.test", 404, "unknown_host"],
	])("answers %s with %i", (h, status, code) => {
		expect(decide(table, get(h))).toMatchObject({ kind: "reply", status, code });
	});

	it("normalises the Host: case, port and trailing dot", () => {
		for (const h of ["EU.Test", "eu.test:8443", "eu.test.", "EU.TEST.:443"]) {
			expect(decide(table, get(h))).toMatchObject({ kind: "proxy", hostname: "eu.test" });
		}
		const d = decide(table, get("EU.test:8443"));
		expect(d).toMatchObject({ authority: "eu.test:8443" });
	});

	it.each([
		["", "empty"],
		["eu .test", "space"],
		["eu.test:", "empty port"],
		["eu.test:99999", "port out of range"],
		["eu.test:80a", "port not numeric"],
		["eu..test", "empty label"],
		["-eu.test", "label starting with a dash"],
		["eu_test.test", "underscore"],
		["eu.test, other.test", "two Host headers joined"],
		["user@eu.test", "userinfo"],
		[`${"a".repeat(64)}.test`, "label over 63 characters"],
		["[::1", "unclosed IPv6 literal"],
		["[zz::1]", "IPv6 literal with letters"],
		["eu.test\r\nx-injected: 1", "CR/LF"],
	])("rejects a malformed Host (%s: %s) with 400", (h) => {
		expect(decide(table, get(h))).toMatchObject({
			kind: "reply",
			status: 400,
			code: "bad_request",
		});
	});

	it("rejects a missing Host with 400", () => {
		expect(decide(table, get(undefined))).toMatchObject({
			status: 400,
			message: "missing Host header",
		});
	});

	it("treats IP literals as hosts no tenant is served at", () => {
		expect(decide(table, get("127.0.0.1:8443"))).toMatchObject({ status: 404 });
		expect(decide(table, get("[::1]:8443"))).toMatchObject({ status: 404 });
	});

	it("answers 421 when the Host is not the TLS server name", () => {
		expect(decide(table, get("global.test", { sni: "eu.test" }))).toMatchObject({
			status: 421,
			code: "misdirected_request",
		});
		// Another hostname of the same tenant is still another name: the certificate may not cover it.
		expect(decide(table, get("alias.eu.test", { sni: "eu.test" }))).toMatchObject({ status: 421 });
		expect(decide(table, get("eu.test:8443", { sni: "EU.test." }))).toMatchObject({
			kind: "proxy",
		});
	});

	it("routes an absolute-form target by its authority, under the SNI rule, and forwards origin-form", () => {
		// The Host header is ignored for absolute-form (RFC 9112 3.2.2); SNI still has to match.
		const hijack = decide(
			table,
			get("eu.test", { sni: "eu.test", target: "http://global.test/x" }),
		);
		expect(hijack).toMatchObject({ status: 421 });
		const same = decide(
			table,
			get("global.test", { sni: "eu.test", target: "https://eu.test:8443/x?y" }),
		);
		expect(same).toMatchObject({
			kind: "proxy",
			hostname: "eu.test",
			authority: "eu.test:8443",
			path: "/x?y",
		});
		expect(decide(table, get("eu.test", { target: "http://eu.test" }))).toMatchObject({
			path: "/",
		});
		expect(decide(table, get("eu.test", { target: "http://eu.test?q" }))).toMatchObject({
			path: "/?q",
		});
		expect(decide(table, get("eu.test", { target: "http://unknown.test/" }))).toMatchObject({
			status: 404,
		});
	});

	it.each([
		["ftp://eu.test/", "another scheme"],
		["http://user@eu.test/", "userinfo"],
		["eu.test:443", "authority-form"],
		["index.html", "relative"],
		["/a b", "a space"],
		["/a#frag", "a fragment"],
		["*", "asterisk-form outside OPTIONS"],
	])("rejects a request target with %s (%s) with 400", (target) => {
		expect(decide(table, get("eu.test", { target }))).toMatchObject({ status: 400 });
	});

	it("passes OPTIONS * through", () => {
		expect(decide(table, get("eu.test", { method: "OPTIONS", target: "*" }))).toMatchObject({
			kind: "proxy",
			path: "*",
		});
	});

	it("refuses CONNECT and TRACE with 405 and malformed methods with 400, passes other methods", () => {
		expect(
			decide(table, get("eu.test", { method: "CONNECT", target: "eu.test:443" })),
		).toMatchObject({ status: 405 });
		expect(decide(table, get("eu.test", { method: "TRACE" }))).toMatchObject({ status: 405 });
		expect(decide(table, get("eu.test", { method: "GE T" }))).toMatchObject({ status: 400 });
		expect(decide(table, get("eu.test", { method: "" }))).toMatchObject({ status: 400 });
		expect(decide(table, get("eu.test", { method: "PROPFIND" }))).toMatchObject({ kind: "proxy" });
	});
});

describe("decideHttpsRedirect", () => {
	it("redirects a served host to HTTPS with the same path, naming the port unless 443", () => {
		expect(decideHttpsRedirect(table, get("EU.test:8080", { target: "/p?q=1" }), 8443)).toEqual({
			kind: "redirect",
			status: 308,
			location: "https://eu.test:8443/p?q=1",
		});
		expect(decideHttpsRedirect(table, get("eu.test"), 443)).toMatchObject({
			location: "https://eu.test/",
		});
	});

	it("redirects suspended tenants too (HTTPS tells them why), but not unknown or malformed hosts", () => {
		expect(decideHttpsRedirect(table, get("suspended.test"), 443)).toMatchObject({
			kind: "redirect",
		});
		expect(decideHttpsRedirect(table, get("evil.example"), 443)).toMatchObject({ status: 404 });
		expect(decideHttpsRedirect(table, get("eu.test/evil"), 443)).toMatchObject({ status: 400 });
	});
});
