/**
 * Counters the scheduled jobs report in their results; a host adds them up (`metrics()` of the
 * Node scheduler) and exports them however it exports metrics. Names follow Prometheus style.
 */
export interface JobMetrics {
	health_probes_total: number;
	health_probe_failures_total: number;
	/** Probes that could not run in this runtime (TCP without a connect function). */
	health_probes_skipped_total: number;
	node_state_changes_total: number;
	/** Tenant DNS record sets rewritten by failover or recovery. */
	dns_failover_changes_total: number;
	/** Alerts: a tenant with no healthy node left inside its residency (records kept as they were). */
	dns_fail_static_total: number;
	dns_failover_errors_total: number;
	certificate_renewals_total: number;
	certificate_renewal_failures_total: number;
	/** Alerts: a certificate within 7 days of expiry whose renewal failed. */
	certificate_expiry_alerts_total: number;
	/** Pieces of work skipped because another runner held their lease. */
	lease_contended_total: number;
}

export function emptyMetrics(): JobMetrics {
	return {
		health_probes_total: 0,
		health_probe_failures_total: 0,
		health_probes_skipped_total: 0,
		node_state_changes_total: 0,
		dns_failover_changes_total: 0,
		dns_fail_static_total: 0,
		dns_failover_errors_total: 0,
		certificate_renewals_total: 0,
		certificate_renewal_failures_total: 0,
		certificate_expiry_alerts_total: 0,
		lease_contended_total: 0,
	};
}

/** Adds `more` into `into` (mutates and returns `into`). */
export function addMetrics(into: JobMetrics, more: Partial<JobMetrics>): JobMetrics {
	for (const [key, value] of Object.entries(more) as Array<[keyof JobMetrics, number]>) {
		into[key] += value;
	}
	return into;
}
