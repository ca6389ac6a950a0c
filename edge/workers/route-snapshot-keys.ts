/**
 * The contract between the control plane, which writes the route snapshot to Workers KV, and the
 * edge worker, which reads it. Constants only, so both bundles can import it for free.
 */

/** The whole `RouteSnapshot`, as JSON. */
export const ROUTE_SNAPSHOT_KEY = "route-snapshot";

/** The snapshot's version alone: a few bytes, so checking for a change costs almost nothing. */
export const ROUTE_SNAPSHOT_VERSION_KEY = "route-snapshot-version";

/** Workers KV refuses values larger than 25 MiB (see docs/adr/0007). */
export const KV_VALUE_LIMIT_BYTES = 25 * 1024 * 1024;
