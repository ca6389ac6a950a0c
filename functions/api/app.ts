import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import { regions as regionsTable } from "../../db/schema/catalog";
import { AppError } from "../errors";
import { zodViolations } from "../policy/violations";
import { newId } from "../runtime";
import { grants, type Scope, verifyApiToken } from "../services/api-tokens";
import type { Platform, ServiceContext } from "../services/context";
import { getJob } from "../services/jobs";
import { handleProvisioningEvent } from "../services/provisioning/handle-event";
import { bindTenantProvider } from "../services/tenant-providers";
import { createTenant, getTenant, listTenants, updateTenant } from "../services/tenants";
import { uploadCertificate } from "../services/upload-certificate";
import { provisioningEventSchema } from "../webhooks/events";
import { SIGNATURE_HEADER, type SignatureFailure, verifySignature } from "../webhooks/signature";

export interface AppEnv {
	Variables: {
		requestId: string;
		ctx: ServiceContext;
	};
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/** The control API. Built once per process (or isolate) from the platform; starts nothing. */
export interface AppHooks {
	/** Called after a webhook queued a job, so the runner picks it up now rather than at its next tick. */
	jobsQueued?: () => void;
}

const SIGNATURE_FAILURES: Record<SignatureFailure, string> = {
	missing: `missing ${SIGNATURE_HEADER} header`,
	malformed: `malformed ${SIGNATURE_HEADER} header: expected t=<unix seconds>,v1=<hex HMAC-SHA256>`,
	stale: "signature timestamp is outside the tolerance window (replayed or clock skew)",
	mismatch: "signature does not match any webhook secret",
};

/**
 * `platform` may be a loader: the Workers entry opens the store on first use per isolate, so
 * `/healthz` answers even when a database is unreachable.
 */
export function createApp(
	platformOrLoader: Platform | (() => Promise<Platform>),
	hooks: AppHooks = {},
): Hono<AppEnv> {
	const load =
		typeof platformOrLoader === "function" ? platformOrLoader : async () => platformOrLoader;
	let loaded: Platform | undefined;
	const getPlatform = async () => {
		try {
			loaded ??= await load();
		} catch (err) {
			// Messages from opening the store name the region and a redacted URL, never a secret.
			throw new AppError(
				"unavailable",
				`control store unavailable: ${err instanceof Error ? err.message : String(err)}`,
			);
		}
		return loaded;
	};
	const app = new Hono<AppEnv>();

	app.use(async (c, next) => {
		const incoming = c.req.header("x-request-id");
		const requestId = incoming && REQUEST_ID.test(incoming) ? incoming : newId("req");
		c.set("requestId", requestId);
		c.header("x-request-id", requestId);
		await next();
	});

	app.onError((err, c) => {
		const requestId = c.get("requestId") ?? newId("req");
		if (err instanceof AppError) {
			const body: Record<string, unknown> = { code: err.code, message: err.message, requestId };
			if (err.violations) body.violations = err.violations;
			return c.json({ error: body }, err.status);
		}
		loaded?.logger.log("error", "unhandled error in API", {
			requestId,
			path: c.req.path,
			error: err instanceof Error ? err.message : String(err),
		});
		return c.json({ error: { code: "internal", message: "internal error", requestId } }, 500);
	});

	app.notFound((c) =>
		c.json(
			{
				error: {
					code: "not_found",
					message: `no route for ${c.req.method} ${c.req.path}`,
					requestId: c.get("requestId"),
				},
			},
			404,
		),
	);

	app.get("/healthz", (c) => c.json({ ok: true }));

	const v1 = new Hono<AppEnv>();
	v1.use(
		bodyLimit({
			maxSize: 64 * 1024,
			onError: () => {
				throw new AppError("payload_too_large", "request body is larger than 64 KiB");
			},
		}),
	);

	const requireScope = (scope: Scope) =>
		createMiddleware<AppEnv>(async (c, next) => {
			const header = c.req.header("authorization");
			if (!header)
				throw new AppError(
					"unauthorized",
					"missing bearer token: send Authorization: Bearer <token>",
				);
			const match = /^Bearer ([^\s]+)$/.exec(header);
			const platform = await getPlatform();
			const token = match?.[1] && (await verifyApiToken(platform.store, match[1]));
			if (!token) throw new AppError("unauthorized", "unknown or revoked API token");
			if (!grants(token.scopes, scope)) {
				throw new AppError("forbidden", `this token lacks the "${scope}" scope`);
			}
			c.set("ctx", { platform, actor: `token:${token.id}` });
			await next();
		});

	v1.get("/regions", requireScope("read"), async (c) => {
		const rows = await c.get("ctx").platform.store.catalog.select().from(regionsTable);
		return c.json({
			regions: rows.map((r) => ({
				id: r.id,
				jurisdiction: r.jurisdiction,
				database: r.databaseUrl,
			})),
		});
	});

	v1.get("/tenants", requireScope("read"), async (c) =>
		c.json({ tenants: await listTenants({ ctx: c.get("ctx") }) }),
	);

	v1.get("/tenants/:id", requireScope("read"), async (c) =>
		c.json({ tenant: await getTenant({ ctx: c.get("ctx"), input: { id: c.req.param("id") } }) }),
	);

	v1.post("/tenants", requireScope("tenants:write"), async (c) => {
		const tenant = await createTenant({ ctx: c.get("ctx"), input: await jsonBody(c.req.raw) });
		return c.json({ tenant }, 201);
	});

	v1.patch("/tenants/:id", requireScope("tenants:write"), async (c) => {
		const tenant = await updateTenant({
			ctx: c.get("ctx"),
			input: { id: c.req.param("id"), changes: await jsonBody(c.req.raw) },
		});
		return c.json({ tenant });
	});

	/** A tenant's own DNS or issuer provider (byo), or a configured one chosen for it. */
	v1.put("/tenants/:id/providers/:kind", requireScope("tenants:write"), async (c) => {
		const bound = await bindTenantProvider({
			ctx: c.get("ctx"),
			input: {
				tenantId: c.req.param("id"),
				kind: c.req.param("kind"),
				body: await jsonBody(c.req.raw),
			},
		});
		hooks.jobsQueued?.();
		return c.json({ binding: bound }, 200);
	});

	/** A tenant's own certificate (byo): validated, sealed, served at once. */
	v1.put("/tenants/:id/certificate", requireScope("tenants:write"), async (c) => {
		const stored = await uploadCertificate({
			ctx: c.get("ctx"),
			input: { tenantId: c.req.param("id"), body: await jsonBody(c.req.raw) },
		});
		return c.json({ certificate: stored }, 201);
	});

	v1.get("/jobs/:id", requireScope("read"), async (c) =>
		c.json({ job: await getJob({ ctx: c.get("ctx"), input: { id: c.req.param("id") } }) }),
	);

	/** Signed by the platform (HMAC over timestamp and raw body), not by an API token. */
	v1.post("/webhooks/provisioning", async (c) => {
		const platform = await getPlatform();
		if (platform.webhookSecrets.length === 0) {
			throw new AppError(
				"unavailable",
				"provisioning webhooks are not configured: set a webhook secret (e.g. CASTELLAN_WEBHOOK_SECRET)",
			);
		}
		const body = await c.req.text();
		const check = await verifySignature({
			header: c.req.header(SIGNATURE_HEADER),
			body,
			secrets: platform.webhookSecrets,
			now: platform.clock.now(),
			toleranceSeconds: platform.config.webhooks.toleranceSeconds,
		});
		if (!check.ok) throw new AppError("unauthorized", SIGNATURE_FAILURES[check.reason]);
		let json: unknown;
		try {
			json = JSON.parse(body);
		} catch {
			throw new AppError("bad_request", "the request body is not valid JSON");
		}
		const event = provisioningEventSchema.safeParse(json);
		if (!event.success) throw AppError.validation(zodViolations(event.error));
		const answer = await handleProvisioningEvent({
			ctx: { platform, actor: `platform:${check.owner}` },
			input: { event: event.data, platformId: check.owner, bodyHash: await sha256Hex(body) },
		});
		hooks.jobsQueued?.();
		return c.json(answer, 202);
	});

	app.route("/v1", v1);
	return app;
}

async function sha256Hex(text: string): Promise<string> {
	const digest = new Uint8Array(
		await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)),
	);
	return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function jsonBody(request: Request): Promise<unknown> {
	if (!request.headers.get("content-type")?.toLowerCase().startsWith("application/json")) {
		throw new AppError("bad_request", "send the body as JSON with Content-Type: application/json");
	}
	try {
		return await request.json();
	} catch {
		throw new AppError("bad_request", "the request body is not valid JSON");
	}
}
