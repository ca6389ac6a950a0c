import type {
	ExportedHandler,
	Response as WorkersResponse,
} from "@cloudflare/workers-types/latest";
import { createApp } from "./api/app";
import { runScheduledJobs } from "./jobs/scheduler";
import type { Platform } from "./services/context";
import { runDueJobs } from "./services/provisioning/run-jobs";
import { publishRouteSnapshot } from "./services/publish-route-snapshot";
import { type FunctionsEnv, openWorkerPlatform } from "./workers/open-worker-platform";
import { workersTcpConnect } from "./workers/workers-tcp-connect";

/**
 * The functions worker: the control API and provisioning webhooks (fetch), and the scheduled
 * jobs (cron triggers in wrangler.toml). The platform is opened once per isolate and env.
 */
const platforms = new WeakMap<FunctionsEnv, Promise<Platform>>();
const HOLDER = "workers";

function platformFor(env: FunctionsEnv): Promise<Platform> {
	let platform = platforms.get(env);
	if (!platform) {
		platform = openWorkerPlatform(env);
		// A failed open is retried by the next request rather than cached.
		platform.catch(() => platforms.delete(env));
		platforms.set(env, platform);
	}
	return platform;
}

/** Tells the Workers edge about route changes (a no-op when its version is already there). */
async function publishRoutes(env: FunctionsEnv, platform: Platform): Promise<void> {
	if (env.ROUTES) await publishRouteSnapshot(platform.store, env.ROUTES);
}

export default {
	async fetch(request, env, ctx) {
		const app = createApp(() => platformFor(env), {
			// A webhook queued a job: run it after the answer, then publish the routes it changed.
			jobsQueued: () =>
				ctx.waitUntil(
					platformFor(env).then(async (platform) => {
						await runDueJobs(platform, { holder: HOLDER });
						await publishRoutes(env, platform);
					}),
				),
		});
		// Hono is typed against the DOM's Request/Response; workerd's are the same objects at runtime.
		const response = await app.fetch(request as unknown as Request, env, ctx as never);
		if (request.method !== "GET" && response.status < 400) {
			ctx.waitUntil(platformFor(env).then((platform) => publishRoutes(env, platform)));
		}
		return response as unknown as WorkersResponse;
	},

	async scheduled(controller, env, ctx) {
		ctx.waitUntil(
			platformFor(env).then(async (platform) => {
				await runScheduledJobs(platform, {
					holder: HOLDER,
					now: new Date(controller.scheduledTime),
					tcpConnect: workersTcpConnect,
					jobs: ["provisioning", "probe-nodes", "apply-failovers", "renew-certificates"],
				});
				await publishRoutes(env, platform);
			}),
		);
	},
} satisfies ExportedHandler<FunctionsEnv>;
