// @peculiar/x509 needs the Reflect polyfill loaded before it.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { eq } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { routes } from "../../db/schema/region";
import { type AriFetch, fetchRenewalWindow } from "../../functions/jobs/acme-renewal-info";
import { renewDueCertificates } from "../../functions/jobs/renew-due-certificates";
import { oneThirdRemainingAt } from "../../functions/jobs/renewal-policy";
import type { CertificateIssuer } from "../../functions/providers/types";
import { type PdnsServer, startPdnsServer } from "../helpers/pdns-server";
import { httpsGet, type PebbleServer, startPebble } from "../helpers/pebble-server";
import {
	activeCertificates,
	addNode,
	addTenant,
	auditActions,
	createJobsFixture,
	EU,
	type JobsFixture,
	ZONE,
} from "./helpers/jobs-fixture";

let pdns: PdnsServer;
let pebble: PebbleServer;
let fx: JobsFixture | undefined;

beforeAll(async () => {
	pdns = await startPdnsServer({ zones: [ZONE] });
	pebble = await startPebble({ dnsServer: pdns.dnsAddress });
});
afterAll(async () => {
	await pebble?.stop();
	await pdns?.stop();
});
afterEach(() => fx?.close());

/** GET trusting Pebble's self-signed listener (Node 20's fetch cannot be given a CA). */
const pebbleFetch: AriFetch = async (url) => {
	const { status, body } = await httpsGet(url, pebble.tlsCaPem);
	return new Response(status === 204 ? null : body, { status });
};

describe("renewal through a real ACME CA (Pebble, DNS-01 through PowerDNS)", () => {
	it("renews a Pebble certificate at one third remaining; Pebble 2.4 offers no ARI, so the rule applies", async () => {
		fx = await createJobsFixture({ pdns, pebble });
		const { platform, clock } = fx;
		await addNode(platform, { region: EU, name: "eu-a", address: "192.0.2.10" });
		await addTenant(platform, { id: "ten_p", slug: "pebble", home: EU });
		const [first] = await activeCertificates(platform, EU, "ten_p");
		expect(first?.issuer).toBe("acme-eu");

		// The CA's directory has no renewalInfo: no window, the job falls back to one third.
		expect(
			await fetchRenewalWindow({
				directoryUrl: pebble.directoryUrl,
				chainPem: first!.chainPem,
				now: clock.now(),
				fetch: pebbleFetch,
			}),
		).toBeUndefined();
		// The ACME issuer as it is, with the ARI lookup a CA that offers it would answer.
		const acme = fx.realIssuer("acme-eu");
		const withAri: CertificateIssuer = {
			capabilities: acme.capabilities,
			issue: (r) => acme.issue(r),
			trustAnchors: (r) => acme.trustAnchors(r),
			renewalWindow: (c) =>
				fetchRenewalWindow({
					directoryUrl: pebble.directoryUrl,
					chainPem: c.chainPem,
					now: clock.now(),
					fetch: pebbleFetch,
				}),
		};
		fx.overrideIssuer("acme-eu", withAri);

		const due = oneThirdRemainingAt(first!);
		clock.set(new Date(due.getTime() - 60_000));
		expect((await renewDueCertificates(platform, { holder: "r1" })).outcomes).toEqual([]);
		clock.set(due);
		const result = await renewDueCertificates(platform, { holder: "r1" });
		expect(result.outcomes).toEqual([
			expect.objectContaining({ result: "renewed", reason: "one-third-lifetime" }),
		]);

		const [second] = await activeCertificates(platform, EU, "ten_p");
		expect(second?.id).toBe(result.outcomes[0]?.newCertificateId);
		expect(second?.serial).not.toBe(first?.serial);
		const leaf = new x509.X509Certificate(x509.PemConverter.decode(second!.chainPem)[0]!);
		expect(leaf.issuer).toMatch(/Pebble Intermediate/);
		expect(leaf.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON()).toEqual([
			{ type: "dns", value: `pebble.${ZONE}` },
		]);
		const [route] = await platform.store
			.region(EU)
			.db.select()
			.from(routes)
			.where(eq(routes.tenantId, "ten_p"));
		expect(route?.certificateId).toBe(second?.id);
		// The DNS-01 challenge records are gone again.
		expect(await pdns.query(`_acme-challenge.pebble.${ZONE}`, "TXT")).toEqual([]);
		expect(
			(await auditActions(platform, EU, "ten_p")).filter((e) => e.action === "certificate.renewed"),
		).toHaveLength(1);
	});
});
