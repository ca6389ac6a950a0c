import { expect } from "vitest";
import { probeNodes } from "../../../functions/jobs/probe-nodes";
import { registerNode } from "../../../functions/services/nodes";
import { handleProvisioningEvent } from "../../../functions/services/provisioning/handle-event";
import { runDueJobs } from "../../../functions/services/provisioning/run-jobs";
import { createTenant, updateTenant } from "../../../functions/services/tenants";
import type { TestPlatform } from "../../helpers/test-platform";

/**
 * Drives a real test platform through its services, the way the API would: nodes, tenants,
 * provisioning, deletion. Hostnames are `<slug>.localhost` (the default config's base domain).
 */
export class ControlPlane {
	constructor(private readonly t: TestPlatform) {}

	get store() {
		return this.t.platform.store;
	}

	private get ctx() {
		return { platform: this.t.platform, actor: "test" };
	}

	async node(input: {
		regionId: string;
		name: string;
		instanceUrls: string[];
		healthUrl?: string;
		dedicatedTenantId?: string;
	}): Promise<void> {
		await registerNode({ ctx: this.ctx, input: { address: "127.0.0.1", ...input } });
	}

	/** Creates a tenant (not provisioned yet); returns its hostname. */
	async tenant(input: {
		id: string;
		slug: string;
		homeRegion: string;
		profile?: "standard" | "sovereign";
		allowedRegions?: string[];
	}): Promise<string> {
		const created = await createTenant({ ctx: this.ctx, input });
		return `${created.slug}.localhost`;
	}

	/** Runs every due provisioning job (DNS, certificate, route) and expects each to succeed. */
	async provision(): Promise<void> {
		const outcomes = await runDueJobs(this.t.platform, { holder: "workers-test" });
		expect(outcomes.filter((o) => o.state !== "succeeded")).toEqual([]);
	}

	async suspend(tenantId: string): Promise<void> {
		await updateTenant({
			ctx: this.ctx,
			input: { id: tenantId, changes: { status: "suspended" } },
		});
	}

	/** The platform's tenant.deleted event: served no more at once; the route stays until the job runs. */
	async delete(tenantId: string): Promise<void> {
		await handleProvisioningEvent({
			ctx: this.ctx,
			input: {
				event: { id: `evt_delete_${tenantId}`, type: "tenant.deleted", data: { tenantId } },
				platformId: "default",
				bodyHash: `delete-${tenantId}`,
			},
		});
	}

	/** One probe pass that changes a node's state on its first result; returns the changes. */
	async probe(): Promise<Array<{ name: string; to: string }>> {
		const result = await probeNodes(this.t.platform, {
			holder: "workers-test",
			thresholds: { rise: 1, fall: 1 },
		});
		return result.transitions.map((t) => ({ name: t.name, to: t.to }));
	}
}
