import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import { regions as regionsTable } from "../../db/schema/catalog";
import { AppError } from "../errors";
import { newId } from "../runtime";
import { grants, type Scope, verifyApiToken } from "../services/api-tokens";
import type { Platform, ServiceContext } from "../services/context";
import { createTenant, getTenant, listTenants, updateTenant } from "../services/tenants";

export interface AppEnv {
	Variables: {
		requestId: string;
		ctx: ServiceContext;
	};
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/** The control API. Built once per process (or isolate) from the platform; starts nothing. */
export function createApp(platform: Platform): Hono<AppEnv> {
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
		platform.logger.log("error", "unhandled error in API", {
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
			const token = match?.[1] && (await verifyApiToken(platform.store, match[1]));
			if (!token) throw new AppError("unauthorized", "unknown or revoked API token");
			if (!grants(token.scopes, scope)) {
				throw new AppError("forbidden", `this token lacks the "${scope}" scope`);
			}
			c.set("ctx", { platform, actor: `token:${token.id}` });
			await next();
		});

	v1.get("/regions", requireScope("read"), async (c) => {
		const rows = await platform.store.catalog.select().from(regionsTable);
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

	app.route("/v1", v1);
	return app;
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
