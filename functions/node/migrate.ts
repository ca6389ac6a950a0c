import { fileURLToPath } from "node:url";
import { migrate } from "drizzle-orm/libsql/migrator";
import type { ControlStore } from "../../db/store";

const folder = (name: "catalog" | "region") =>
	fileURLToPath(new URL(`../../db/migrations/${name}`, import.meta.url));

/** Applies the committed drizzle-kit migrations to the catalog and to every region database. */
export async function migrateStore(store: ControlStore): Promise<string[]> {
	const done: string[] = [];
	await migrate(store.catalog, { migrationsFolder: folder("catalog") });
	done.push("catalog");
	for (const region of store.regions()) {
		await migrate(region.db, { migrationsFolder: folder("region") });
		done.push(`region ${region.id}`);
	}
	return done;
}
