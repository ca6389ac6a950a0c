import type { TenantStatus } from "../../db/schema/region/tenants";

/** One hostname the edge serves, denormalised with what routing needs from its tenant. */
export interface SnapshotHost {
	/** Lower-case, no trailing dot. */
	hostname: string;
	tenantId: string;
	status: TenantStatus;
	/** Regions the tenant may be served from, in failover order (home first). */
	allowedRegions: string[];
	/** Jurisdictions the tenant's traffic may reach; an instance must be in one of them too. */
	allowedJurisdictions: string[];
	/** The certificate the route names, if any (the Node edge picks its TLS certificate with it). */
	certificateId?: string | undefined;
}

/** An origin the edge may proxy to. */
export interface SnapshotInstance {
	id: string;
	nodeId: string;
	regionId: string;
	jurisdiction: string;
	/** Origin base URL, e.g. http://10.200.0.5:9000 */
	url: string;
	/** Routable: its node is healthy, or not probed yet (unknown); false when unhealthy. */
	healthy: boolean;
	/** Set when the node is dedicated to one tenant: it serves that tenant and no other. */
	dedicatedTenantId?: string | undefined;
}

/**
 * Everything the routing core needs, and nothing secret. Plain JSON on purpose: the Node edge
 * builds it from the control store, the Workers edge reads the same object from KV.
 */
export interface RouteSnapshot {
	/** Changes whenever any region's route version changes, e.g. "eu-central:12,us-east:4". */
	version: string;
	hosts: SnapshotHost[];
	instances: SnapshotInstance[];
}
