/**
 * Runs provisioning jobs in a separate process and SIGKILLs itself right after the named step
 * commits, as a power cut would. Usage: node --import tsx crash-runner.ts <dir> <step> <holder>
 */
import { defaultConfig } from "../../functions/config/default-config";
import { createNodeRegistry } from "../../functions/node/node-registry";
import { openPlatform } from "../../functions/node/open-platform";
import { checkConfig } from "../../functions/policy/check-config";
import { runDueJobs } from "../../functions/services/provisioning/run-jobs";

const [dir, crashAfter, holder] = process.argv.slice(2) as [string, string, string];
const checked = checkConfig(defaultConfig(dir), createNodeRegistry());
if (!checked.ok) throw new Error("config");
const platform = await openPlatform({ config: checked.config, env: {}, migrate: false });
await runDueJobs(platform, {
	holder,
	onStepCommitted: (_job, step) => {
		if (step === crashAfter) process.kill(process.pid, "SIGKILL");
	},
});
process.stdout.write("finished without crashing\n");
