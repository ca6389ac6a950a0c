import { and, eq, isNotNull, type SQL, sql } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";
import type { RegionDb } from "../../db/client";
import { certificates, internalCa, providerBindings } from "../../db/schema/region";
import type { RegionHandle } from "../../db/store";
import { certificateKeyBinding, internalCaKeyBinding, providerSettingsBinding } from "./bindings";
import { ciphertextPrefix, createSecretBox } from "./envelope";
import type { MasterKeyring } from "./keyring";
import type { SecretBinding, SecretBox } from "./secret-box";

export interface RewrapCount {
	region: string;
	/** Ciphertexts moved to the current master key in this run. */
	rewrapped: number;
	/** Ciphertexts that were already sealed with the current master key. */
	alreadyCurrent: number;
}

export class RewrapError extends Error {
	override name = "RewrapError";

	constructor(
		readonly region: string,
		readonly done: readonly RewrapCount[],
		cause: unknown,
	) {
		const reason = cause instanceof Error ? cause.message : String(cause);
		super(
			`key rotation stopped in region ${region}, where nothing was changed (regions done: ${done.map((d) => d.region).join(", ") || "none"}): ${reason}`,
			{ cause },
		);
	}
}

type Db = Pick<RegionDb, "select" | "update">;

const BATCH = 200;

/**
 * Moves every stored secret to the keyring's current master key, one transaction per region.
 * Each ciphertext is fully opened and re-sealed rather than only re-wrapping its data key: the
 * kid is in both layers' associated data, secrets are small, and it reuses the tested path.
 * Idempotent: ciphertexts already under the current key are counted and left alone, so after
 * a failure (say, a key missing from the keyring) fix the cause and run it again.
 */
export async function rewrapAll(
	store: { regions(): RegionHandle[] },
	keyring: MasterKeyring,
): Promise<RewrapCount[]> {
	const box = createSecretBox(keyring);
	const prefix = ciphertextPrefix(keyring.current.kid);
	const counts: RewrapCount[] = [];
	for (const region of store.regions()) {
		try {
			counts.push(await region.db.transaction((tx) => rewrapRegion(tx, region.id, box, prefix)));
		} catch (err) {
			throw new RewrapError(region.id, counts, err);
		}
	}
	return counts;
}

async function rewrapRegion(
	db: Db,
	regionId: string,
	box: SecretBox,
	prefix: string,
): Promise<RewrapCount> {
	const count: RewrapCount = { region: regionId, rewrapped: 0, alreadyCurrent: 0 };
	const reseal = async (ciphertext: string, binding: SecretBinding) =>
		box.seal(await box.open(ciphertext, binding), binding);

	const certs = certificates.privateKeyCiphertext;
	count.alreadyCurrent += await countCurrent(db, certs, prefix);
	for (;;) {
		const rows = await db
			.select({ id: certificates.id, tenantId: certificates.tenantId, ciphertext: certs })
			.from(certificates)
			.where(notCurrent(certs, prefix))
			.limit(BATCH);
		if (rows.length === 0) break;
		for (const row of rows) {
			const resealed = await reseal(row.ciphertext, certificateKeyBinding(row.tenantId, row.id));
			await db
				.update(certificates)
				.set({ privateKeyCiphertext: resealed })
				.where(eq(certificates.id, row.id));
			count.rewrapped++;
		}
	}

	const settings = providerBindings.settingsCiphertext;
	count.alreadyCurrent += await countCurrent(db, settings, prefix);
	for (;;) {
		const rows = await db
			.select({
				tenantId: providerBindings.tenantId,
				kind: providerBindings.kind,
				ciphertext: settings,
			})
			.from(providerBindings)
			.where(and(isNotNull(settings), notCurrent(settings, prefix)))
			.limit(BATCH);
		if (rows.length === 0) break;
		for (const row of rows) {
			const binding = providerSettingsBinding(row.tenantId, row.kind);
			const resealed = await reseal(row.ciphertext!, binding);
			await db
				.update(providerBindings)
				.set({ settingsCiphertext: resealed })
				.where(
					and(eq(providerBindings.tenantId, row.tenantId), eq(providerBindings.kind, row.kind)),
				);
			count.rewrapped++;
		}
	}

	const caKeys = internalCa.privateKeyCiphertext;
	count.alreadyCurrent += await countCurrent(db, caKeys, prefix);
	for (;;) {
		const rows = await db
			.select({ id: internalCa.id, ciphertext: caKeys })
			.from(internalCa)
			.where(notCurrent(caKeys, prefix))
			.limit(BATCH);
		if (rows.length === 0) break;
		for (const row of rows) {
			const resealed = await reseal(row.ciphertext, internalCaKeyBinding(regionId, row.id));
			await db
				.update(internalCa)
				.set({ privateKeyCiphertext: resealed })
				.where(eq(internalCa.id, row.id));
			count.rewrapped++;
		}
	}
	return count;
}

// Every row a batch returns is re-sealed under the current key (or the run throws), so it
// drops out of the next batch: the loops end without paging state and memory stays bounded.
function notCurrent(column: SQLiteColumn, prefix: string): SQL {
	return sql`substr(${column}, 1, ${prefix.length}) <> ${prefix}`;
}

async function countCurrent(db: Db, column: SQLiteColumn, prefix: string): Promise<number> {
	const [row] = await db
		.select({ n: sql<number>`count(*)` })
		.from(column.table)
		.where(sql`substr(${column}, 1, ${prefix.length}) = ${prefix}`);
	return Number(row?.n ?? 0);
}
