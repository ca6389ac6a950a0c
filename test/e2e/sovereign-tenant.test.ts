/**
 * Issue 4's end-to-end path with every part real: a signed `tenant.created` webhook for a
 * sovereign EU tenant -> PowerDNS serves its A record and, during issuance, its ACME challenge
 * TXT -> Pebble (resolving through that PowerDNS) issues the certificate -> the Node edge
 * serves https://<tenant>.<zone> with it and proxies to the EU origin; then `tenant.deleted`
 * removes the record and the route.
 */
import { request } from "node:https";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNodeEdge } from "../../edge/node/start-node-edge";
import { createApp } from "../../functions/api/app";
import { registerNode } from "../../functions/services/nodes";
import { runDueJobs } from "../../functions/services/provisioning/run-jobs";
import { signPayload } from "../../functions/webhooks/signature";
import { startDemoOrigin } from "../../scripts/demo-origin";
import { startPdnsServer } from "../helpers/pdns-server";
import { startPebble } from "../helpers/pebble-server";
import { createTestPlatform, type TestPlatform } from "../helpers/test-platform";

const ZONE = "tenants.example.test";
const SECRET = "whsec_e2e_platform_0123456789abcdef012345";

type Started<T extends (...args: never[]) => Promise<unknown>> = Awaited<ReturnType<T>>;
let pdns: Started<typeof startPdnsServer>;
let pebble: Started<typeof startPebble>;
let euOrigin: Started<typeof startDemoOrigin>;
let usOrigin: Started<typeof startDemoOrigin>;
let t: TestPlatform;
let edge: Started<typeof startNodeEdge>;
let app: ReturnType<typeof createApp>;
let pebbleRoot: string;

beforeAll(async () => {
	pdns = await startPdnsServer({ zones: [ZONE] });
	pebble = await startPebble({ dnsServer: pdns.dnsAddress });
	pebbleRoot = await pebble.rootsPem();
	euOrigin = await startDemoOrigin({ regionId: "eu-central", port: 0 });
	usOrigin = await startDemoOrigin({ regionId: "us-east", port: 0 });
	t = await createTestPlatform({
		edit: (doc) => {
			doc.baseDomain = ZONE;
			doc.providers = { ...doc.providers };
			doc.providers["pdns-eu"] = {
				kind: "dns",
				type: "powerdns",
				settings: { apiUrl: pdns.apiUrl, apiKey: pdns.apiKey, zones: [ZONE] },
				capabilities: { jurisdiction: "EU" },
			};
			doc.providers["acme-eu"] = {
				kind: "issuer",
				type: "acme",
				settings: {
					directoryUrl: pebble.directoryUrl,
					dnsProvider: "pdns-eu",
					trustedRootsPem: pebble.tlsCaPem,
					trustAnchorUrl: `${pebble.managementUrl}/roots/0`,
				},
				capabilities: { jurisdiction: "EU" },
			};
			doc.profiles.sovereign = {
				providers: {
					dns: "localhost-dns",
					issuer: "internal-ca",
					storage: "regional-store",
					relay: "direct",
				},
				regions: { "eu-central": { dns: "pdns-eu", issuer: "acme-eu" } },
			};
			doc.webhooks = { platforms: [{ id: "e2e", secrets: [SECRET] }] };
		},
	});
	const ctx = { platform: t.platform, actor: "test" };
	await registerNode({
		ctx,
		input: {
			regionId: "eu-central",
			name: "eu-1",
			address: "127.0.0.1",
			instanceUrls: [`http://127.0.0.1:${euOrigin.port}`],
		},
	});
	await registerNode({
		ctx,
		input: {
			regionId: "us-east",
			name: "us-1",
			address: "127.0.0.2",
			instanceUrls: [`http://127.0.0.1:${usOrigin.port}`],
		},
	});
	edge = await startNodeEdge({
		store: t.platform.store,
		secrets: t.platform.secrets,
		host: "127.0.0.1",
		httpsPort: 0,
		httpPort: 0,
		reloadIntervalMs: 100,
	});
	app = createApp(t.platform);
}, 120_000);

afterAll(async () => {
	await edge?.close();
	t?.close();
	await euOrigin?.close();
	await usOrigin?.close();
	await pebble?.stop();
	await pdns?.stop();
});

async function webhook(event: unknown) {
	const body = JSON.stringify(event);
	const signature = await signPayload(SECRET, body, Math.floor(Date.now() / 1000));
	return app.request("/v1/webhooks/provisioning", {
		method: "POST",
		headers: { "content-type": "application/json", "castellan-signature": signature },
		body,
	});
}

function get(hostname: string): Promise<{ status: number; body: string; issuer: string }> {
	return new Promise((resolve, reject) => {
		const req = request(
			{
				host: "127.0.0.1",
				port: edge.httpsPort,
				servername: hostname,
				headers: { host: hostname },
				path: "/hello",
				ca: pebbleRoot,
				agent: false,
			},
			(res) => {
				let body = "";
				res.on("data", (c) => {
					body += c;
				});
				res.on("end", () => {
					const peer = (res.socket as import("node:tls").TLSSocket).getPeerCertificate();
					resolve({ status: res.statusCode ?? 0, body, issuer: String(peer.issuer?.CN ?? "") });
				});
			},
		);
		req.on("error", reject);
		req.end();
	});
}

async function until<T>(probe: () => Promise<T>, ok: (v: T) => boolean, ms = 5000): Promise<T> {
	const deadline = Date.now() + ms;
	for (;;) {
		const value = await probe();
		if (ok(value) || Date.now() > deadline) return value;
		await new Promise((r) => setTimeout(r, 50));
	}
}

describe("sovereign EU tenant, from webhook to HTTPS and back", () => {
	const host = `acme.${ZONE}`;

	it("provisions DNS in PowerDNS, a Pebble certificate through DNS-01, and serves it at the edge", async () => {
		const res = await webhook({
			id: "evt_e2e_1",
			type: "tenant.created",
			data: { tenantId: "ten_acme", slug: "acme", profile: "sovereign", homeRegion: "eu-central" },
		});
		expect(res.status).toBe(202);

		// Watch the challenge record appear in real DNS while the job runs.
		let sawChallenge = false;
		let watching = true;
		const watcher = (async () => {
			while (watching) {
				if ((await pdns.query(`_acme-challenge.${host}`, "TXT")).length > 0) sawChallenge = true;
				await new Promise((r) => setTimeout(r, 20));
			}
		})();
		const outcomes = await runDueJobs(t.platform, { holder: "e2e" });
		watching = false;
		await watcher;
		expect(outcomes).toEqual([
			expect.objectContaining({ state: "succeeded", step: "done", lastError: null }),
		]);
		expect(sawChallenge).toBe(true);
		expect(await pdns.query(`_acme-challenge.${host}`, "TXT")).toEqual([]);
		expect(await pdns.query(host, "A")).toEqual(["127.0.0.1"]);

		const answer = await until(
			() => get(host).catch(() => ({ status: 0, body: "", issuer: "" })),
			(r) => r.status === 200,
		);
		expect(answer.status).toBe(200);
		expect(JSON.parse(answer.body)).toMatchObject({ region: "eu-central", path: "/hello" });
		expect(answer.issuer).toMatch(/Pebble/i);
	});

	it("tenant.deleted removes the DNS record and the route", async () => {
		const res = await webhook({
			id: "evt_e2e_2",
			type: "tenant.deleted",
			data: { tenantId: "ten_acme" },
		});
		expect(res.status).toBe(202);
		await runDueJobs(t.platform, { holder: "e2e" });
		expect(await pdns.query(host, "A")).toEqual([]);
		const after = await until(
			() =>
				get(host).then(
					(r) => r.status,
					(e: NodeJS.ErrnoException) => e.code ?? "error",
				),
			(v) => v === "ECONNRESET",
		);
		// The certificate went with the route: the edge refuses the handshake for that name.
		expect(after).toBe("ECONNRESET");
	});
});
