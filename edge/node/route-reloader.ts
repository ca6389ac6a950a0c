import type { ControlStore } from "../../db/store";
import type { Clock, Logger } from "../../functions/runtime";
import type { SecretBox } from "../../functions/secrets/secret-box";
import { buildRouteTable, type RouteTable } from "../core/route-table";
import { RouteSnapshotLoader, readCombinedRouteVersion } from "../load-route-snapshot";
import { type CertificateSet, loadCertificateSet } from "./tenant-certificates";

/** The route table and the certificates built from the same snapshot, swapped together. */
export interface EdgeRoutes {
	table: RouteTable;
	certificates: CertificateSet;
}

export interface RouteReloaderOptions {
	store: ControlStore;
	secrets: SecretBox;
	clock: Clock;
	logger: Logger;
	intervalMs: number;
	/** Called after every swap (the adapter drops the pools of removed instances). */
	onSwap?(routes: EdgeRoutes): void;
}

/**
 * Keeps `current` in step with the store: polls every region's route version and rebuilds the
 * table and certificates when any changed. A failed rebuild keeps serving the last good routes.
 */
export class RouteReloader {
	#current: EdgeRoutes | undefined;
	#timer: ReturnType<typeof setTimeout> | undefined;
	#running: Promise<void> | undefined;
	#stopped = false;
	readonly #loader: RouteSnapshotLoader;

	constructor(private readonly options: RouteReloaderOptions) {
		this.#loader = new RouteSnapshotLoader(options.store);
	}

	get current(): EdgeRoutes {
		if (!this.#current) throw new Error("routes not loaded yet: call load() first");
		return this.#current;
	}

	/** Loads the routes now from every region, whatever the versions (also the first load). */
	load(): Promise<void> {
		return this.#exclusive(() => this.#rebuild(true));
	}

	/** Starts polling; one check at a time, the next one `intervalMs` after the last ends. */
	start(): void {
		const tick = () => {
			this.#timer = setTimeout(async () => {
				await this.#exclusive(() => this.#checkVersion()).catch((err) =>
					this.options.logger.log("error", "edge: route reload failed", { reason: message(err) }),
				);
				if (!this.#stopped) tick();
			}, this.options.intervalMs);
			this.#timer.unref();
		};
		tick();
	}

	async stop(): Promise<void> {
		this.#stopped = true;
		clearTimeout(this.#timer);
		await this.#running?.catch(() => {});
	}

	async #checkVersion(): Promise<void> {
		const version = await readCombinedRouteVersion(this.options.store);
		if (version !== this.#current?.table.version) await this.#rebuild(false);
	}

	async #rebuild(fresh: boolean): Promise<void> {
		const { store, secrets, clock, logger } = this.options;
		const snapshot = await this.#loader.load({ fresh });
		const table = buildRouteTable(snapshot);
		const certificates = await loadCertificateSet({
			store,
			secrets,
			snapshot,
			clock,
			logger,
			previous: this.#current?.certificates,
		});
		this.#current = { table, certificates };
		if (table.skippedHosts.length > 0) {
			logger.log("warn", "edge: hostnames skipped (not valid DNS names)", {
				count: table.skippedHosts.length,
				first: table.skippedHosts[0],
			});
		}
		logger.log("info", "edge: routes loaded", {
			version: table.version,
			hosts: table.size,
			certificates: certificates.size,
		});
		this.options.onSwap?.(this.#current);
	}

	// Serialises loads, so a poll and an explicit reload never race each other's results.
	async #exclusive(run: () => Promise<void>): Promise<void> {
		while (this.#running) await this.#running.catch(() => {});
		const running = run();
		this.#running = running;
		try {
			await running;
		} finally {
			this.#running = undefined;
		}
	}
}

function message(err: unknown): string {
	return err instanceof Error ? err.message : String(err);
}
