import type {
	RouteSnapshot,
	SnapshotHost,
	SnapshotInstance,
} from "../../../edge/core/route-snapshot";

export const EU = { regionId: "eu-central", jurisdiction: "EU" };
export const EU_WEST = { regionId: "eu-west", jurisdiction: "EU" };
export const US = { regionId: "us-east", jurisdiction: "US" };

export function instance(
	id: string,
	place: { regionId: string; jurisdiction: string },
	extra: Partial<SnapshotInstance> = {},
): SnapshotInstance {
	return {
		id,
		nodeId: `node-${id}`,
		url: `http://10.0.0.1/${id}`,
		healthy: true,
		...place,
		...extra,
	};
}

export function host(hostname: string, extra: Partial<SnapshotHost> = {}): SnapshotHost {
	return {
		hostname,
		tenantId: `tenant-${hostname}`,
		status: "active",
		allowedRegions: ["eu-central"],
		allowedJurisdictions: ["EU"],
		...extra,
	};
}

export function snapshot(hosts: SnapshotHost[], instances: SnapshotInstance[]): RouteSnapshot {
	return { version: "test:1", hosts, instances };
}
