/**
 * A scheduled-jobs runner in its own process, on the platform files of a test, optionally
 * SIGKILLing itself at a named point as a power cut would.
 *
 *   node --import tsx jobs-runner.ts <dir> <job> <holder> <nowMs> [crashAt] [pdnsJson]
 *
 * job: "renew" | "probe" | "apply-failovers". crashAt: "after-issue" | "after-store" (renew),
 * "after-commit" (probe: the node's state change committed, no DNS written yet),
 * "after-first-tenant" (probe/apply-failovers: one tenant's DNS done). Prints one JSON line.
 */
import { defaultConfig } from "../../../functions/config/default-config";
import { applyPendingFailovers } from "../../../functions/jobs/apply-failover";
import { probeNodes } from "../../../functions/jobs/probe-nodes";
import { renewDueCertificates } from "../../../functions/jobs/renew-due-certificates";
import { openPlatform } from "../../../functions/node/open-platform";
import { checkConfig } from "../../../functions/policy/check-config";
import { createDefaultRegistry } from "../../../functions/providers/default-registry";
import { FakeClock } from "../../helpers/fake-clock";
import { editConfig } from "./jobs-fixture";

const [dir, job, holder, nowMs, crashAt, pdnsJson] = process.argv.slice(2) as [
	string,
	string,
	string,
	string,
	string | undefined,
	string | undefined,
];
const crash = (point: string) => {
	if (crashAt === point) process.kill(process.pid, "SIGKILL");
};

const doc = defaultConfig(dir);
editConfig(doc, pdnsJson && pdnsJson !== "-" ? JSON.parse(pdnsJson) : undefined);
const checked = checkConfig(doc, createDefaultRegistry());
if (!checked.ok) throw new Error(JSON.stringify(checked.violations));
const platform = await openPlatform({
	config: checked.config,
	env: {},
	migrate: false,
	clock: new FakeClock(Number(nowMs)),
});
// A slower CA (env CASTELLAN_TEST_ISSUE_DELAY_MS), so two runners really overlap in time.
const delay = Number(process.env.CASTELLAN_TEST_ISSUE_DELAY_MS ?? 0);
if (delay > 0) {
	const real = platform.providers;
	platform.providers = {
		...real,
		get: ((kind, name) => {
			const provider = real.get(kind, name);
			if (kind !== "issuer") return provider;
			const issuer = provider as ReturnType<typeof real.get<"issuer">>;
			return {
				capabilities: issuer.capabilities,
				trustAnchors: (region: string) => issuer.trustAnchors(region),
				issue: async (request: Parameters<typeof issuer.issue>[0]) => {
					await new Promise((r) => setTimeout(r, delay));
					return issuer.issue(request);
				},
			};
		}) as typeof real.get,
	};
}
let tenantsDone = 0;
const onTenantDone = () => {
	tenantsDone++;
	if (tenantsDone === 1) crash("after-first-tenant");
};

let result: unknown;
if (job === "renew") {
	const r = await renewDueCertificates(platform, {
		holder,
		afterIssue: () => crash("after-issue"),
		afterStore: () => crash("after-store"),
	});
	result = {
		renewed: r.renewed,
		failed: r.failed,
		busy: r.busy,
		skipped: r.outcomes.length - r.renewed - r.failed - r.busy,
	};
} else if (job === "probe") {
	const r = await probeNodes(platform, {
		holder,
		timeoutMs: 1000,
		applyFailover: crashAt !== "after-commit",
		onRegionCommitted: (_region, transitions) => {
			if (transitions.length > 0) crash("after-commit");
		},
	});
	result = { transitions: r.transitions.length, contended: r.contendedRegions.length };
} else if (job === "apply-failovers") {
	const r = await applyPendingFailovers(platform, { holder, onTenantDone });
	result = { applied: r.applied.length, contended: r.contended };
} else {
	throw new Error(`unknown job ${job}`);
}
platform.close();
process.stdout.write(`${JSON.stringify(result)}\n`);
