import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { type ControlStore, openStore, type StoreLocations } from "../../db/store";
import { migrateStore } from "../../functions/node/migrate";

export interface TempRegion {
	id: string;
	jurisdiction: string;
}

export interface TempStoreOptions {
	/** Regions to create, each with its own database file; default eu-central (EU) and us-east (US). */
	regions?: TempRegion[];
	/** Apply the committed migrations (default true); false leaves the databases empty. */
	migrate?: boolean;
}

export interface TempStore {
	store: ControlStore;
	/** The temporary directory holding catalog.db and <region>.db. */
	dir: string;
	/** The URLs the store was opened with, to open a second store (another "node") on the same files. */
	locations: StoreLocations;
	/** Closes the store and deletes the directory. */
	close(): void;
}

export const DEFAULT_TEMP_REGIONS: TempRegion[] = [
	{ id: "eu-central", jurisdiction: "EU" },
	{ id: "us-east", jurisdiction: "US" },
];

/** A ControlStore on real libSQL files in a fresh temporary directory, migrated. */
export async function createTempStore(options: TempStoreOptions = {}): Promise<TempStore> {
	const dir = mkdtempSync(join(tmpdir(), "castellan-"));
	const regions = options.regions ?? DEFAULT_TEMP_REGIONS;
	const locations: StoreLocations = {
		catalog: { url: `file:${join(dir, "catalog.db")}` },
		regions: regions.map((r) => ({ ...r, url: `file:${join(dir, `${r.id}.db`)}` })),
	};
	let store: ControlStore;
	try {
		store = await openStore(createClient, locations);
	} catch (err) {
		rmSync(dir, { recursive: true, force: true });
		throw err;
	}
	const close = () => {
		store.close();
		rmSync(dir, { recursive: true, force: true });
	};
	try {
		if (options.migrate ?? true) {
			await migrateStore(store);
		}
	} catch (err) {
		close();
		throw err;
	}
	return { store, dir, locations, close };
}
