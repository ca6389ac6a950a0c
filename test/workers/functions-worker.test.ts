import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closedPortUrl } from "../edge/helpers/test-origins";
import { type HranaServer, startHranaServer } from "./helpers/hrana-http-server";
import { call, errorOf } from "./helpers/http-call";
import { runInWorkerd, type WorkerdInstance } from "./helpers/run-in-workerd";
import { bundleWorker, type WorkerBundle } from "./helpers/wrangler-bundle";

const URL_TOKEN = "url-token-must-not-leak-8c1f";
const CATALOG_TOKEN = "catalog-token-must-not-leak-41d2";
const BEARER = "cst_bearer-must-not-leak-77aa";
const MASTER_KEY = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64");

/** The configuration document of wrangler.toml's example, with the databases given. */
function configDocument(databases: {
	catalog: { url: string; authToken?: string };
	region: { url: string };
}) {
	const regional = { jurisdiction: "regional" };
	return {
		baseDomain: "tenants.example.net",
		catalog: databases.catalog,
		regions: [{ id: "eu-central", jurisdiction: "EU", database: databases.region }],
		providers: {
			"internal-ca": { kind: "issuer", type: "internal", capabilities: regional },
			"platform-dns": { kind: "dns", type: "noop", capabilities: regional },
			"regional-store": { kind: "storage", type: "regional-db", capabilities: regional },
			direct: { kind: "relay", type: "direct", capabilities: regional },
		},
		profiles: {
			standard: {
				providers: {
					dns: "platform-dns",
					issuer: "internal-ca",
					storage: "regional-store",
					relay: "direct",
				},
			},
		},
	};
}

describe("functions worker in workerd", () => {
	let bundle: WorkerBundle;
	let dir: string;
	let catalog: HranaServer;
	let deadRegionUrl: string;
	let unreachable: WorkerdInstance;
	let misconfigured: WorkerdInstance;

	beforeAll(async () => {
		dir = mkdtempSync(join(tmpdir(), "castellan-functions-worker-"));
		// The catalog is reachable (a real libSQL file behind sqld's HTTP protocol), so opening
		// the store gets as far as the region database, which is not.
		[bundle, catalog, deadRegionUrl] = await Promise.all([
			bundleWorker(),
			startHranaServer(join(dir, "catalog.db")),
			closedPortUrl(),
		]);
		const good = configDocument({
			catalog: { url: catalog.url, authToken: CATALOG_TOKEN },
			region: { url: `${deadRegionUrl}/?authToken=${URL_TOKEN}` },
		});
		// Invariant 4: a sovereign profile's DNS provider must declare the region's jurisdiction.
		const bad = configDocument({ catalog: { url: catalog.url }, region: { url: catalog.url } });
		const sovereign = {
			...bad,
			providers: {
				...bad.providers,
				"global-dns": { kind: "dns", type: "noop", capabilities: { jurisdiction: "global" } },
			},
			profiles: {
				sovereign: {
					providers: {
						dns: "global-dns",
						issuer: "internal-ca",
						storage: "regional-store",
						relay: "direct",
					},
				},
			},
		};
		[unreachable, misconfigured] = await Promise.all([
			runInWorkerd(bundle, {
				kvNamespaces: ["ROUTES"],
				bindings: { CASTELLAN_CONFIG: JSON.stringify(good), CASTELLAN_MASTER_KEY: MASTER_KEY },
			}),
			runInWorkerd(bundle, {
				kvNamespaces: ["ROUTES"],
				bindings: {
					CASTELLAN_CONFIG: JSON.stringify(sovereign),
					CASTELLAN_MASTER_KEY: MASTER_KEY,
				},
			}),
		]);
	}, 120_000);
	afterAll(async () => {
		await Promise.all([unreachable?.dispose(), misconfigured?.dispose(), catalog?.close()]);
		await bundle?.remove();
		rmSync(dir, { recursive: true, force: true });
	});

	it("answers GET /healthz without opening the store", async () => {
		const executed = catalog.executed.length;
		const res = await call(unreachable.url, { host: "api.example.net", path: "/healthz" });
		expect(res.status).toBe(200);
		expect(JSON.parse(res.text)).toEqual({ ok: true });
		expect(catalog.executed.length).toBe(executed);
	});

	it("refuses /v1/tenants without a token: 401 in the shared error shape", async () => {
		const res = await call(unreachable.url, { host: "api.example.net", path: "/v1/tenants" });
		expect(res.status).toBe(401);
		const error = errorOf(res);
		expect(error.code).toBe("unauthorized");
		expect(error.message).toMatch(/missing bearer token/);
		expect(res.headers["x-request-id"]).toBe(error.requestId);
	});

	it("answers 503 naming the region and its redacted URL when the region database is unreachable", async () => {
		const res = await call(unreachable.url, {
			host: "api.example.net",
			path: "/v1/tenants",
			headers: { authorization: `Bearer ${BEARER}` },
		});
		expect(res.status).toBe(503);
		const error = errorOf(res);
		expect(error.code).toBe("unavailable");
		expect(error.message).toContain(
			`control store unavailable: cannot open the region eu-central database at ${deadRegionUrl}/:`,
		);
		// The catalog was opened for real before the region failed.
		expect(catalog.executed).toContain("select 1");
		for (const secret of [URL_TOKEN, CATALOG_TOKEN, BEARER, MASTER_KEY]) {
			expect(res.text).not.toContain(secret);
		}
	});

	it("answers 503 whose message names the violated rule when CASTELLAN_CONFIG breaks policy", async () => {
		const res = await call(misconfigured.url, {
			host: "api.example.net",
			path: "/v1/tenants",
			headers: { authorization: `Bearer ${BEARER}` },
		});
		expect(res.status).toBe(503);
		const error = errorOf(res);
		expect(error.code).toBe("unavailable");
		expect(error.message).toContain("$.profiles.sovereign.providers.dns: sovereign profile:");
		expect(error.message).toContain('provider "global-dns" declares jurisdiction global');
		expect(res.text).not.toContain(BEARER);
	});
});
