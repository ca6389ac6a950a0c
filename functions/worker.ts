import type {
	ExportedHandler,
	Response as WorkersResponse,
} from "@cloudflare/workers-types/latest";
import { createApp } from "./api/app";
import type { Platform } from "./services/context";
import { type FunctionsEnv, openWorkerPlatform } from "./workers/open-worker-platform";

/**
 * The functions worker: the control API and provisioning webhooks (fetch), and the scheduled
 * jobs (cron triggers in wrangler.toml). The platform is opened once per isolate and env.
 */
const platforms = new WeakMap<FunctionsEnv, Promise<Platform>>();

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

export default {
	async fetch(request, env, ctx) {
		const app = createApp(() => platformFor(env));
		// Hono is typed against the DOM's Request/Response; workerd's are the same objects at runtime.
		const response = await app.fetch(request as unknown as Request, env, ctx as never);
		return response as unknown as WorkersResponse;
	},
} satisfies ExportedHandler<FunctionsEnv>;
