import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eq, sql } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { RegionDb } from "../../db/client";
import { acmeAccounts, certificates, internalCa, providerBindings } from "../../db/schema/region";
import type { ProviderKind } from "../../db/schema/region/provider-bindings";
import { addKeyToFile, loadMasterKeyring, retireOldKeys } from "../../functions/node/master-key";
import { acmeAccountKeyBinding } from "../../functions/secrets/acme-binding";
import {
	certificateKeyBinding,
	internalCaKeyBinding,
	providerSettingsBinding,
} from "../../functions/secrets/bindings";
import {
	ciphertextKeyId,
	createSecretBox,
	UnknownMasterKeyError,
} from "../../functions/secrets/envelope";
import { generateMasterKey, MasterKeyring } from "../../functions/secrets/keyring";
import { RewrapError, rewrapAll } from "../../functions/secrets/rotate";
import type { SecretBinding, SecretBox } from "../../functions/secrets/secret-box";
import { createTempStore, type TempStore } from "../helpers/temp-store";

const AT = new Date("2026-01-01T00:00:00Z");

/** Every secret row of one region: how to find it again, its binding and its plaintext. */
interface SeededSecret {
	read(db: RegionDb): Promise<string>;
	binding: SecretBinding;
	plaintext: string;
}

async function seedRegion(
	db: Pick<RegionDb, "insert">,
	regionId: string,
	box: SecretBox,
	opts: { certificates: number },
): Promise<SeededSecret[]> {
	const seeded: SeededSecret[] = [];
	for (let i = 0; i < opts.certificates; i++) {
		const tenantId = `ten_${regionId}_${i % 3}`;
		const id = `crt_${regionId}_${i}`;
		const binding = certificateKeyBinding(tenantId, id);
		const plaintext = `private key ${id}`;
		await db.insert(certificates).values({
			id,
			tenantId,
			hostname: `${id}.example.net`,
			issuer: "internal",
			serial: String(i),
			chainPem: "chain",
			privateKeyCiphertext: await box.seal(plaintext, binding),
			notBefore: AT,
			notAfter: AT,
			status: "active",
			createdAt: AT,
		});
		seeded.push({
			binding,
			plaintext,
			read: async (d) =>
				(await d.select().from(certificates).where(eq(certificates.id, id)))[0]!
					.privateKeyCiphertext,
		});
	}
	const tenantId = `ten_${regionId}_0`;
	for (const kind of ["dns", "issuer"] as ProviderKind[]) {
		const binding = providerSettingsBinding(tenantId, kind);
		const plaintext = JSON.stringify({ token: `${kind}-token-${regionId}` });
		await db.insert(providerBindings).values({
			tenantId,
			kind,
			type: "byo",
			settingsCiphertext: await box.seal(plaintext, binding),
			updatedAt: AT,
		});
		seeded.push({
			binding,
			plaintext,
			read: async (d) =>
				(
					await d
						.select()
						.from(providerBindings)
						.where(
							sql`${providerBindings.tenantId} = ${tenantId} and ${providerBindings.kind} = ${kind}`,
						)
				)[0]!.settingsCiphertext!,
		});
	}
	// A named provider has no settings of its own: the null column is not a secret to rewrap.
	await db
		.insert(providerBindings)
		.values({ tenantId, kind: "relay", providerName: "edge", updatedAt: AT });
	const caId = `ca_${regionId}`;
	const caBinding = internalCaKeyBinding(regionId, caId);
	await db.insert(internalCa).values({
		id: caId,
		certPem: "root",
		privateKeyCiphertext: await box.seal(`ca key ${regionId}`, caBinding),
		notAfter: AT,
		createdAt: AT,
	});
	seeded.push({
		binding: caBinding,
		plaintext: `ca key ${regionId}`,
		read: async (d) =>
			(await d.select().from(internalCa).where(eq(internalCa.id, caId)))[0]!.privateKeyCiphertext,
	});
	return seeded;
}

describe("rewrapAll", () => {
	let temp: TempStore;
	const keyA = generateMasterKey();
	const keyB = generateMasterKey();
	let seeded: Map<string, SeededSecret[]>;

	beforeEach(async () => {
		temp = await createTempStore();
		const boxA = createSecretBox(await MasterKeyring.fromKeys([keyA]));
		seeded = new Map();
		// More certificates in one region than a batch holds, so the batching loop runs twice.
		const sizes: Record<string, number> = { "eu-central": 205, "us-east": 4 };
		for (const region of temp.store.regions()) {
			const secrets = await region.db.transaction((tx) =>
				seedRegion(tx, region.id, boxA, { certificates: sizes[region.id]! }),
			);
			seeded.set(region.id, secrets);
		}
	});
	afterEach(() => temp.close());

	async function openAll(keyring: MasterKeyring): Promise<void> {
		const box = createSecretBox(keyring);
		for (const region of temp.store.regions()) {
			for (const secret of seeded.get(region.id)!) {
				expect(await box.openText(await secret.read(region.db), secret.binding)).toBe(
					secret.plaintext,
				);
			}
		}
	}

	it("moves every secret to the current key, so the old key can go", async () => {
		const rotated = await MasterKeyring.fromKeys([keyB, keyA]);
		expect(await rewrapAll(temp.store, rotated)).toEqual([
			{ region: "eu-central", rewrapped: 205 + 2 + 1, alreadyCurrent: 0 },
			{ region: "us-east", rewrapped: 4 + 2 + 1, alreadyCurrent: 0 },
		]);

		const onlyB = await MasterKeyring.fromKeys([keyB]);
		await openAll(onlyB);
		const onlyA = createSecretBox(await MasterKeyring.fromKeys([keyA]));
		for (const region of temp.store.regions()) {
			for (const secret of seeded.get(region.id)!) {
				const ciphertext = await secret.read(region.db);
				expect(ciphertextKeyId(ciphertext)).toBe(onlyB.current.kid);
				await expect(onlyA.open(ciphertext, secret.binding)).rejects.toThrow(UnknownMasterKeyError);
			}
		}
		const [relay] = await temp.store
			.region("eu-central")
			.db.select()
			.from(providerBindings)
			.where(eq(providerBindings.kind, "relay"));
		expect(relay?.settingsCiphertext).toBeNull();
	});

	it("is idempotent: a second run rewraps nothing", async () => {
		const rotated = await MasterKeyring.fromKeys([keyB, keyA]);
		await rewrapAll(temp.store, rotated);
		const before = await seeded.get("us-east")![0]!.read(temp.store.region("us-east").db);
		expect(await rewrapAll(temp.store, rotated)).toEqual([
			{ region: "eu-central", rewrapped: 0, alreadyCurrent: 208 },
			{ region: "us-east", rewrapped: 0, alreadyCurrent: 7 },
		]);
		expect(await seeded.get("us-east")![0]!.read(temp.store.region("us-east").db)).toBe(before);
	});

	it("skips discarded keys (deleted tenants) and rotates ACME account keys too", async () => {
		const eu = temp.store.region("eu-central").db;
		const now = new Date();
		await eu.insert(certificates).values({
			id: "crt_discarded",
			tenantId: "ten_gone",
			hostname: "gone.example.test",
			issuer: "internal-ca",
			serial: "01",
			chainPem: "-",
			privateKeyCiphertext: "",
			notBefore: now,
			notAfter: now,
			status: "revoked",
			createdAt: now,
		});
		const boxA = createSecretBox(await MasterKeyring.fromKeys([keyA]));
		const binding = acmeAccountKeyBinding("eu-central", "acme-pebble:eu-central");
		await eu.insert(acmeAccounts).values({
			id: "acme-pebble:eu-central",
			directoryUrl: "https://acme.example.test/dir",
			privateKeyCiphertext: await boxA.seal("account key", binding),
			createdAt: now,
		});
		const rotated = await MasterKeyring.fromKeys([keyB, keyA]);
		const [eu1] = await rewrapAll(temp.store, rotated);
		expect(eu1).toEqual({ region: "eu-central", rewrapped: 205 + 2 + 1 + 1, alreadyCurrent: 0 });
		const [account] = await eu.select().from(acmeAccounts);
		const onlyB = createSecretBox(await MasterKeyring.fromKeys([keyB]));
		expect(await onlyB.openText(account!.privateKeyCiphertext, binding)).toBe("account key");
		const [discarded] = await eu
			.select()
			.from(certificates)
			.where(eq(certificates.id, "crt_discarded"));
		expect(discarded?.privateKeyCiphertext).toBe("");
	});

	it("counts secrets already under the current key without touching them", async () => {
		const counts = await rewrapAll(temp.store, await MasterKeyring.fromKeys([keyA]));
		expect(counts.map((c) => c.rewrapped)).toEqual([0, 0]);
		expect(counts.map((c) => c.alreadyCurrent)).toEqual([208, 7]);
	});

	it("stops at a secret it cannot open, leaving that region unchanged", async () => {
		const usEast = temp.store.region("us-east").db;
		const keyC = generateMasterKey();
		const stranger = createSecretBox(await MasterKeyring.fromKeys([keyC]));
		// The CA key is rewrapped last: the certificates and settings rewrapped before it must roll back.
		const victim = seeded.get("us-east")!.at(-1)!;
		expect(victim.binding.purpose).toBe("internal-ca-key");
		await usEast
			.update(internalCa)
			.set({ privateKeyCiphertext: await stranger.seal("x", victim.binding) })
			.where(eq(internalCa.id, victim.binding.ref));

		const rotated = await MasterKeyring.fromKeys([keyB, keyA]);
		const err = await rewrapAll(temp.store, rotated).catch((e: unknown) => e);
		expect(err).toBeInstanceOf(RewrapError);
		expect((err as RewrapError).done).toEqual([
			{ region: "eu-central", rewrapped: 208, alreadyCurrent: 0 },
		]);
		expect((err as Error).message).toMatch(
			/^key rotation stopped in region us-east, where nothing was changed \(regions done: eu-central\): cannot decrypt internal-ca-key for platform:us-east\/ca_us-east: this secret was sealed with master key [0-9a-f]{16}, which is not in the configured keyring/,
		);
		const keyAId = (await MasterKeyring.fromKeys([keyA])).current.kid;
		for (const secret of seeded.get("us-east")!.slice(0, -1)) {
			expect(ciphertextKeyId(await secret.read(usEast))).toBe(keyAId);
		}
		// With the missing key added to the keyring, a rerun finishes only what is left.
		const fixed = await MasterKeyring.fromKeys([keyB, keyA, keyC]);
		expect(await rewrapAll(temp.store, fixed)).toEqual([
			{ region: "eu-central", rewrapped: 0, alreadyCurrent: 208 },
			{ region: "us-east", rewrapped: 7, alreadyCurrent: 0 },
		]);
	});
});

describe("key rotation with a key file", () => {
	let temp: TempStore;
	let dir: string;
	beforeEach(async () => {
		temp = await createTempStore({ regions: [{ id: "eu-west", jurisdiction: "EU" }] });
		dir = mkdtempSync(join(tmpdir(), "castellan-"));
	});
	afterEach(() => {
		temp.close();
		rmSync(dir, { recursive: true, force: true });
	});

	it("add a key, rewrap, retire the old key: everything still opens", async () => {
		const path = join(dir, "master.key");
		const load = async () =>
			(await loadMasterKeyring({ file: path }, {}, { createIfMissing: true })).keyring;
		const original = await load();
		const db = temp.store.region("eu-west").db;
		const secrets = await seedRegion(db, "eu-west", createSecretBox(original), { certificates: 3 });

		await addKeyToFile(path);
		expect(await rewrapAll(temp.store, await load())).toEqual([
			{ region: "eu-west", rewrapped: 6, alreadyCurrent: 0 },
		]);
		const { retired } = await retireOldKeys(path);
		expect(retired).toEqual(original.kids);

		const current = createSecretBox(await load());
		const before = createSecretBox(original);
		for (const secret of secrets) {
			const ciphertext = await secret.read(db);
			expect(await current.openText(ciphertext, secret.binding)).toBe(secret.plaintext);
			await expect(before.open(ciphertext, secret.binding)).rejects.toThrow(UnknownMasterKeyError);
		}
	});
});
