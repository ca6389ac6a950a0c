// @peculiar/x509 needs the Reflect polyfill loaded before it.
import "reflect-metadata";
import { execFileSync } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import * as x509 from "@peculiar/x509";
import { afterEach, describe, expect, it } from "vitest";
import { ariCertId, fetchRenewalWindow } from "../../functions/jobs/acme-renewal-info";
import { renewDueCertificates } from "../../functions/jobs/renew-due-certificates";
import { oneThirdRemainingAt } from "../../functions/jobs/renewal-policy";
import type { CertificateIssuer } from "../../functions/providers/types";
import {
	activeCertificates,
	addNode,
	addTenant,
	createJobsFixture,
	DAY_MS,
	EU,
} from "./helpers/jobs-fixture";

/**
 * A CA's ARI endpoints as RFC 9773 documents them: `renewalInfo` in the directory, and
 * GET <renewalInfo>/<certID> answering a suggestedWindow with Retry-After, 404 for a
 * certificate it does not know. (The Pebble of this test bed, 2.4.0, predates ARI.)
 */
async function startAriServer(options: {
	withRenewalInfo?: boolean;
	windows?: Map<string, unknown>;
	status?: number;
	retryAfterSeconds?: number;
}) {
	const seen: string[] = [];
	const server: Server = createServer((req, res) => {
		seen.push(req.url ?? "");
		const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
		if (req.url === "/dir") {
			res.writeHead(200, { "content-type": "application/json" });
			res.end(
				JSON.stringify({
					newNonce: `${base}/nonce`,
					newOrder: `${base}/order`,
					...(options.withRenewalInfo === false ? {} : { renewalInfo: `${base}/renewal-info` }),
				}),
			);
			return;
		}
		const id = req.url?.startsWith("/renewal-info/") ? req.url.slice("/renewal-info/".length) : "";
		const window = options.windows?.get(id);
		if (options.status) {
			res.writeHead(options.status);
			res.end("boom");
		} else if (!window) {
			res.writeHead(404, { "content-type": "application/problem+json" });
			res.end(
				JSON.stringify({
					type: "urn:ietf:params:acme:error:malformed",
					detail: "unknown certificate",
				}),
			);
		} else {
			res.writeHead(200, {
				"content-type": "application/json",
				"retry-after": String(options.retryAfterSeconds ?? 21600),
			});
			res.end(JSON.stringify(window));
		}
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const port = (server.address() as AddressInfo).port;
	return {
		directoryUrl: `http://127.0.0.1:${port}/dir`,
		seen,
		close: () => new Promise<void>((resolve) => server.close(() => resolve())),
	};
}

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
	for (const close of closers.splice(0).reverse()) await close();
});

/** certID computed by openssl, independently of the code under test. */
function opensslCertId(pem: string): string {
	const out = execFileSync(
		"openssl",
		["x509", "-noout", "-serial", "-ext", "authorityKeyIdentifier"],
		{
			input: pem,
		},
	).toString();
	const serialHex = /serial=([0-9A-F]+)/.exec(out)![1]!;
	const aki =
		/keyid:([0-9A-F:]+)/i.exec(out)?.[1] ?? /\n\s+([0-9A-F]{2}(?::[0-9A-F]{2})+)/.exec(out)![1]!;
	let serial = Buffer.from(serialHex.length % 2 ? `0${serialHex}` : serialHex, "hex");
	if (serial[0]! & 0x80) serial = Buffer.concat([Buffer.of(0), serial]);
	const b64 = (b: Buffer) => b.toString("base64url");
	return `${b64(Buffer.from(aki.replace(/:/g, ""), "hex"))}.${b64(serial)}`;
}

describe("ARI certID (RFC 9773 section 4.1)", () => {
	it("matches the RFC's example", async () => {
		const keys = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
			"sign",
			"verify",
		])) as CryptoKeyPair;
		const cert = await x509.X509CertificateGenerator.createSelfSigned({
			serialNumber: "87654321",
			name: "CN=example",
			keys,
			signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
			notBefore: new Date("2026-01-01T00:00:00Z"),
			notAfter: new Date("2026-04-01T00:00:00Z"),
			extensions: [
				new x509.AuthorityKeyIdentifierExtension("69885B6B87464041E1B37B847BA0AE2CDE01C8D4"),
			],
		});
		expect(ariCertId(cert.toString("pem"))).toBe("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
	});
});

describe("fetchRenewalWindow against an RFC 9773 endpoint on 127.0.0.1", () => {
	async function issuedCertificate() {
		const fx = await createJobsFixture();
		closers.push(() => fx.close());
		await addNode(fx.platform, { region: EU, name: "eu-a", address: "192.0.2.10" });
		await addTenant(fx.platform, { id: "ten_a", slug: "a", home: EU });
		const [cert] = await activeCertificates(fx.platform, EU, "ten_a");
		return { fx, cert: cert! };
	}

	it("asks for the certificate by its certID and returns the window and Retry-After", async () => {
		const { cert, fx } = await issuedCertificate();
		const id = opensslCertId(cert.chainPem);
		expect(ariCertId(cert.chainPem)).toBe(id);
		const ari = await startAriServer({
			windows: new Map([
				[
					id,
					{
						suggestedWindow: { start: "2027-01-10T00:00:00Z", end: "2027-01-12T00:00:00Z" },
						explanationURL: "https://ca.test/incident",
					},
				],
			]),
		});
		closers.push(ari.close);
		const now = fx.clock.now();
		const window = await fetchRenewalWindow({
			directoryUrl: ari.directoryUrl,
			chainPem: cert.chainPem,
			now,
		});
		expect(window).toEqual({
			start: new Date("2027-01-10T00:00:00Z"),
			end: new Date("2027-01-12T00:00:00Z"),
			retryAfter: new Date(now.getTime() + 21600 * 1000),
			explanationUrl: "https://ca.test/incident",
		});
		expect(ari.seen).toEqual(["/dir", `/renewal-info/${id}`]);
	});

	it("is undefined when the CA offers no ARI, or does not know the certificate", async () => {
		const { cert, fx } = await issuedCertificate();
		const none = await startAriServer({ withRenewalInfo: false });
		closers.push(none.close);
		const request = { chainPem: cert.chainPem, now: fx.clock.now() };
		expect(
			await fetchRenewalWindow({ ...request, directoryUrl: none.directoryUrl }),
		).toBeUndefined();
		expect(none.seen).toEqual(["/dir"]);
		const unknown = await startAriServer({ windows: new Map() });
		closers.push(unknown.close);
		expect(
			await fetchRenewalWindow({ ...request, directoryUrl: unknown.directoryUrl }),
		).toBeUndefined();
	});

	it("throws on answers it cannot use (5xx, a window that ends before it starts), so the job falls back", async () => {
		const { cert, fx } = await issuedCertificate();
		const id = ariCertId(cert.chainPem);
		const request = { chainPem: cert.chainPem, now: fx.clock.now() };
		const down = await startAriServer({ status: 503 });
		closers.push(down.close);
		await expect(
			fetchRenewalWindow({ ...request, directoryUrl: down.directoryUrl }),
		).rejects.toThrow(/answered 503/);
		const bad = await startAriServer({
			windows: new Map([
				[id, { suggestedWindow: { start: "2027-01-12T00:00:00Z", end: "2027-01-10T00:00:00Z" } }],
			]),
		});
		closers.push(bad.close);
		await expect(
			fetchRenewalWindow({ ...request, directoryUrl: bad.directoryUrl }),
		).rejects.toThrow(/no valid suggestedWindow/);
	});

	it("drives the renewal job end to end: deferred to the CA's window, renewed inside it", async () => {
		const { cert, fx } = await issuedCertificate();
		const due = oneThirdRemainingAt(cert);
		const windowStart = new Date(due.getTime() + 2 * DAY_MS);
		const ari = await startAriServer({
			retryAfterSeconds: 10 * 86400,
			windows: new Map([
				[
					ariCertId(cert.chainPem),
					{
						suggestedWindow: {
							start: windowStart.toISOString(),
							end: new Date(windowStart.getTime() + DAY_MS).toISOString(),
						},
					},
				],
			]),
		});
		closers.push(ari.close);
		const real = fx.realIssuer("internal-ca");
		const withAri: CertificateIssuer = {
			capabilities: real.capabilities,
			issue: (r) => real.issue(r),
			trustAnchors: (r) => real.trustAnchors(r),
			renewalWindow: (c) =>
				fetchRenewalWindow({
					directoryUrl: ari.directoryUrl,
					chainPem: c.chainPem,
					now: fx.clock.now(),
				}),
		};
		fx.overrideIssuer("internal-ca", withAri);
		fx.clock.set(due);
		const first = await renewDueCertificates(fx.platform, { holder: "r1", random: () => 0 });
		expect(first.outcomes).toEqual([
			expect.objectContaining({ result: "deferred", nextAttemptAt: windowStart }),
		]);
		fx.clock.set(windowStart);
		const second = await renewDueCertificates(fx.platform, { holder: "r1", random: () => 0 });
		expect(second.outcomes).toEqual([
			expect.objectContaining({ result: "renewed", reason: "ari-window" }),
		]);
	});
});
