import { and, eq, type SQL, sql } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";
import type { RegionDb } from "../../db/client";
import { acmeAccounts, certificates, internalCa, providerBindings } from "../../db/schema/region";
import type { RegionHandle } from "../../db/store";
import { acmeAccountKeyBinding } from "./acme-binding";
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

/** One column of sealed secrets: how to find its rows and what each is bound to. */
interface SealedColumn {
	column: SQLiteColumn;
	pending(db: Db, where: SQL, limit: number): Promise<SealedRow[]>;
}

interface SealedRow {
	ciphertext: string;
	binding: SecretBinding;
	write(db: Db, ciphertext: string): Promise<void>;
}

/** Every column holding a sealed secret. A new secret column is one entry here. */
function sealedColumns(regionId: string): SealedColumn[] {
	return [
		{
			column: certificates.privateKeyCiphertext,
			async pending(db, where, limit) {
				const rows = await db
					.select({
						id: certificates.id,
						tenantId: certificates.tenantId,
						ciphertext: certificates.privateKeyCiphertext,
					})
					.from(certificates)
					.where(where)
					.limit(limit);
				return rows.map((row) => ({
					ciphertext: row.ciphertext,
					binding: certificateKeyBinding(row.tenantId, row.id),
					write: (tx, ciphertext) =>
						tx
							.update(certificates)
							.set({ privateKeyCiphertext: ciphertext })
							.where(eq(certificates.id, row.id))
							.then(() => {}),
				}));
			},
		},
		{
			column: providerBindings.settingsCiphertext,
			async pending(db, where, limit) {
				const rows = await db
					.select({
						tenantId: providerBindings.tenantId,
						kind: providerBindings.kind,
						ciphertext: providerBindings.settingsCiphertext,
					})
					.from(providerBindings)
					.where(where)
					.limit(limit);
				return rows.map((row) => ({
					ciphertext: row.ciphertext ?? "",
					binding: providerSettingsBinding(row.tenantId, row.kind),
					write: (tx, ciphertext) =>
						tx
							.update(providerBindings)
							.set({ settingsCiphertext: ciphertext })
							.where(
								and(
									eq(providerBindings.tenantId, row.tenantId),
									eq(providerBindings.kind, row.kind),
								),
							)
							.then(() => {}),
				}));
			},
		},
		{
			column: internalCa.privateKeyCiphertext,
			async pending(db, where, limit) {
				const rows = await db
					.select({ id: internalCa.id, ciphertext: internalCa.privateKeyCiphertext })
					.from(internalCa)
					.where(where)
					.limit(limit);
				return rows.map((row) => ({
					ciphertext: row.ciphertext,
					binding: internalCaKeyBinding(regionId, row.id),
					write: (tx, ciphertext) =>
						tx
							.update(internalCa)
							.set({ privateKeyCiphertext: ciphertext })
							.where(eq(internalCa.id, row.id))
							.then(() => {}),
				}));
			},
		},
		{
			column: acmeAccounts.privateKeyCiphertext,
			async pending(db, where, limit) {
				const rows = await db
					.select({ id: acmeAccounts.id, ciphertext: acmeAccounts.privateKeyCiphertext })
					.from(acmeAccounts)
					.where(where)
					.limit(limit);
				return rows.map((row) => ({
					ciphertext: row.ciphertext,
					binding: acmeAccountKeyBinding(regionId, row.id),
					write: (tx, ciphertext) =>
						tx
							.update(acmeAccounts)
							.set({ privateKeyCiphertext: ciphertext })
							.where(eq(acmeAccounts.id, row.id))
							.then(() => {}),
				}));
			},
		},
	];
}

async function rewrapRegion(
	db: Db,
	regionId: string,
	box: SecretBox,
	prefix: string,
): Promise<RewrapCount> {
	const count: RewrapCount = { region: regionId, rewrapped: 0, alreadyCurrent: 0 };
	for (const sealed of sealedColumns(regionId)) {
		count.alreadyCurrent += await countCurrent(db, sealed.column, prefix);
		for (;;) {
			const rows = await sealed.pending(db, notCurrent(sealed.column, prefix), BATCH);
			if (rows.length === 0) break;
			for (const row of rows) {
				await row.write(
					db,
					await box.seal(await box.open(row.ciphertext, row.binding), row.binding),
				);
				count.rewrapped++;
			}
		}
	}
	return count;
}

// Every row a batch returns is re-sealed under the current key (or the run throws), so it
// drops out of the next batch: the loops end without paging state and memory stays bounded.
// Empty (discarded keys of deleted tenants) and NULL columns hold no secret and are skipped.
function notCurrent(column: SQLiteColumn, prefix: string): SQL {
	return sql`${column} is not null and ${column} <> '' and substr(${column}, 1, ${prefix.length}) <> ${prefix}`;
}

async function countCurrent(db: Db, column: SQLiteColumn, prefix: string): Promise<number> {
	const [row] = await db
		.select({ n: sql<number>`count(*)` })
		.from(column.table)
		.where(sql`substr(${column}, 1, ${prefix.length}) = ${prefix}`);
	return Number(row?.n ?? 0);
}
