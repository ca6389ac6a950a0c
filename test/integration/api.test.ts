import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../functions/api/app";
import { createApiToken } from "../../functions/services/api-tokens";
import { createTestPlatform, type TestPlatform } from "../helpers/test-platform";

let t: TestPlatform;
let app: ReturnType<typeof createApp>;
const tokens: Record<string, string> = {};

beforeAll(async () => {
	t = await createTestPlatform();
	app = createApp(t.platform);
	for (const scope of ["admin", "tenants:write", "read"] as const) {
		tokens[scope] = (
			await createApiToken(t.platform.store, t.platform.clock, { name: scope, scopes: [scope] })
		).token;
	}
});
afterAll(() => t.close());

const auth = (token: string | undefined): Record<string, string> =>
	token ? { authorization: `Bearer ${token}` } : {};

function post(
	path: string,
	body: unknown,
	token: string | undefined,
	headers: Record<string, string> = {},
) {
	return app.request(path, {
		method: "POST",
		headers: { "content-type": "application/json", ...auth(token), ...headers },
		body: typeof body === "string" ? body : JSON.stringify(body),
	});
}

async function expectError(res: Response, status: number, code: string, message?: RegExp) {
	expect(res.status).toBe(status);
	const body = (await res.json()) as {
		error: { code: string; message: string; requestId: string };
	};
	expect(body.error.code).toBe(code);
	expect(body.error.requestId).toMatch(/^req_[0-9a-f]{24}$|^[A-Za-z0-9._:-]{8,128}$/);
	expect(res.headers.get("x-request-id")).toBe(body.error.requestId);
	if (message) expect(body.error.message).toMatch(message);
	return body.error;
}

describe("admin API authentication and scopes", () => {
	it("refuses a request without a token with 401 and the error shape", async () => {
		await expectError(
			await app.request("/v1/tenants"),
			401,
			"unauthorized",
			/missing bearer token/,
		);
	});

	it("refuses an unknown, a malformed and a forged token with 401", async () => {
		await expectError(
			await app.request("/v1/tenants", { headers: auth("nonsense") }),
			401,
			"unauthorized",
		);
		const [, id] = tokens.admin!.split("_");
		const forged = `cst_${id}_${"A".repeat(43)}`;
		await expectError(
			await app.request("/v1/tenants", { headers: auth(forged) }),
			401,
			"unauthorized",
			/unknown or revoked/,
		);
		await expectError(
			await app.request("/v1/tenants", { headers: { authorization: `Basic ${tokens.admin}` } }),
			401,
			"unauthorized",
		);
	});

	it("refuses a read token on a write route with 403 and writes nothing", async () => {
		await expectError(
			await post("/v1/tenants", { slug: "nope", homeRegion: "eu-central" }, tokens.read),
			403,
			"forbidden",
			/lacks the "tenants:write" scope/,
		);
		const list = await app.request("/v1/tenants", { headers: auth(tokens.read) });
		expect(
			((await list.json()) as { tenants: unknown[] }).tenants.map(
				(x) => (x as { slug: string }).slug,
			),
		).not.toContain("nope");
	});

	it("lets read, tenants:write and admin tokens read regions", async () => {
		for (const scope of ["read", "tenants:write", "admin"]) {
			const res = await app.request("/v1/regions", { headers: auth(tokens[scope]) });
			expect(res.status).toBe(200);
			const body = (await res.json()) as { regions: Array<{ id: string; jurisdiction: string }> };
			expect(body.regions.map((r) => `${r.id}:${r.jurisdiction}`).sort()).toEqual([
				"eu-central:EU",
				"us-east:US",
			]);
		}
	});

	it("keeps a well-formed incoming request id and answers 404 in the same shape", async () => {
		const res = await app.request("/v1/nothing-here", {
			headers: { "x-request-id": "client-req-12345" },
		});
		const error = await expectError(res, 404, "not_found");
		expect(error.requestId).toBe("client-req-12345");
	});
});

describe("tenants API", () => {
	it("creates a tenant with a tenants:write token and reads it back", async () => {
		const res = await post(
			"/v1/tenants",
			{ slug: "acme", homeRegion: "eu-central", profile: "sovereign" },
			tokens["tenants:write"],
		);
		expect(res.status).toBe(201);
		const { tenant } = (await res.json()) as {
			tenant: { id: string; homeRegion: string; allowedRegions: string[]; status: string };
		};
		expect(tenant).toMatchObject({
			homeRegion: "eu-central",
			allowedRegions: ["eu-central"],
			status: "provisioning",
		});
		const got = await app.request(`/v1/tenants/${tenant.id}`, { headers: auth(tokens.read) });
		expect(got.status).toBe(200);
		expect(((await got.json()) as { tenant: { slug: string } }).tenant.slug).toBe("acme");
	});

	it("refuses a sovereign tenant allowed outside its jurisdiction, naming the field", async () => {
		const error = await expectError(
			await post(
				"/v1/tenants",
				{
					slug: "leaky",
					homeRegion: "eu-central",
					profile: "sovereign",
					allowedRegions: ["eu-central", "us-east"],
				},
				tokens.admin,
			),
			400,
			"validation_failed",
		);
		expect((error as unknown as { violations: unknown }).violations).toEqual([
			{
				path: "$.allowedRegions[1]",
				rule: "sovereign tenant homed in eu-central (jurisdiction EU) may not be served from us-east (jurisdiction US)",
			},
		]);
		const list = await app.request("/v1/tenants", { headers: auth(tokens.read) });
		expect(JSON.stringify(await list.json())).not.toContain("leaky");
	});

	it("lets a standard tenant be served from regions of several jurisdictions", async () => {
		const res = await post(
			"/v1/tenants",
			{ slug: "globex", homeRegion: "us-east", allowedRegions: ["eu-central", "us-east"] },
			tokens.admin,
		);
		expect(res.status).toBe(201);
		const { tenant } = (await res.json()) as { tenant: { allowedRegions: string[] } };
		expect(tenant.allowedRegions).toEqual(["us-east", "eu-central"]);
	});

	it("refuses changing a tenant to sovereign while it is allowed across jurisdictions", async () => {
		const created = await post(
			"/v1/tenants",
			{ slug: "initech", homeRegion: "eu-central", allowedRegions: ["eu-central", "us-east"] },
			tokens.admin,
		);
		const { tenant } = (await created.json()) as { tenant: { id: string } };
		const res = await app.request(`/v1/tenants/${tenant.id}`, {
			method: "PATCH",
			headers: { "content-type": "application/json", ...auth(tokens.admin) },
			body: JSON.stringify({ profile: "sovereign" }),
		});
		await expectError(res, 400, "validation_failed", /\$\.allowedRegions\[1\]: sovereign tenant/);
		const after = await app.request(`/v1/tenants/${tenant.id}`, { headers: auth(tokens.read) });
		expect(((await after.json()) as { tenant: { profile: string } }).tenant.profile).toBe(
			"standard",
		);
		const ok = await app.request(`/v1/tenants/${tenant.id}`, {
			method: "PATCH",
			headers: { "content-type": "application/json", ...auth(tokens.admin) },
			body: JSON.stringify({ profile: "sovereign", allowedRegions: ["eu-central"] }),
		});
		expect(ok.status).toBe(200);
		expect(((await ok.json()) as { tenant: { profile: string } }).tenant.profile).toBe("sovereign");
	});

	it("refuses a duplicate slug with 409 and unknown tenants with 404", async () => {
		await post("/v1/tenants", { slug: "dupe", homeRegion: "eu-central" }, tokens.admin);
		await expectError(
			await post("/v1/tenants", { slug: "dupe", homeRegion: "us-east" }, tokens.admin),
			409,
			"conflict",
			/hostname "dupe.localhost" is already taken/,
		);
		await expectError(
			await app.request("/v1/tenants/ten_missing", { headers: auth(tokens.read) }),
			404,
			"not_found",
		);
	});

	it("refuses bad bodies cleanly: invalid JSON, wrong type, unknown field, bad slug, oversized", async () => {
		await expectError(
			await post("/v1/tenants", "{not json", tokens.admin),
			400,
			"bad_request",
			/not valid JSON/,
		);
		await expectError(
			await app.request("/v1/tenants", {
				method: "POST",
				headers: auth(tokens.admin),
				body: "slug=x",
			}),
			400,
			"bad_request",
			/Content-Type: application\/json/,
		);
		await expectError(
			await post("/v1/tenants", { slug: "UPPER", homeRegion: "eu-central" }, tokens.admin),
			400,
			"validation_failed",
			/\$\.slug: must be a DNS label/,
		);
		await expectError(
			await post("/v1/tenants", { slug: "x1", homeRegion: "eu-central", extra: 1 }, tokens.admin),
			400,
			"validation_failed",
			/unknown field "extra"/,
		);
		await expectError(
			await post("/v1/tenants", { slug: "x2", homeRegion: "mars" }, tokens.admin),
			400,
			"validation_failed",
			/\$\.homeRegion: unknown region "mars"/,
		);
		await expectError(
			await post(
				"/v1/tenants",
				{ slug: "big", homeRegion: "eu-central", pad: "x".repeat(70 * 1024) },
				tokens.admin,
			),
			413,
			"payload_too_large",
		);
	});
});
