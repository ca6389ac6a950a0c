import type { Platform } from "../services/context";
import { deliverDueNotifications } from "../services/provisioning/deliver-notifications";
import { runDueJobs } from "../services/provisioning/run-jobs";

export interface ProvisioningHost {
	/** Run now (a webhook just queued a job) instead of waiting for the next tick. */
	kick(): void;
	stop(): Promise<void>;
}

/**
 * Runs due provisioning jobs and platform notifications on an interval, one pass at a time.
 * `holder` should be stable across restarts of this node, so it resumes its own leases at once.
 */
export function startProvisioningHost(
	platform: Platform,
	options: { holder: string; intervalMs?: number },
): ProvisioningHost {
	let running: Promise<void> | undefined;
	let again = false;
	let stopped = false;
	const pass = async () => {
		try {
			await runDueJobs(platform, { holder: options.holder });
			await deliverDueNotifications(platform);
		} catch (err) {
			platform.logger.log("error", "provisioning pass failed", {
				error: err instanceof Error ? err.message : String(err),
			});
		}
	};
	const kick = () => {
		if (stopped) return;
		if (running) {
			again = true;
			return;
		}
		running = pass().finally(() => {
			running = undefined;
			if (again) {
				again = false;
				kick();
			}
		});
	};
	const timer = setInterval(kick, options.intervalMs ?? 1000);
	timer.unref();
	kick();
	return {
		kick,
		async stop() {
			stopped = true;
			clearInterval(timer);
			await running;
		},
	};
}
