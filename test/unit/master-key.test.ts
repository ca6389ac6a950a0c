import {
	chmodSync,
	mkdtempSync,
	readdirSync,
	readFileSync,
	rmSync,
	statSync,
	writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
	addKeyToFile,
	loadMasterKeyring,
	MasterKeySourceError,
	retireOldKeys,
} from "../../functions/node/master-key";
import { certificateKeyBinding } from "../../functions/secrets/bindings";
import { createSecretBox } from "../../functions/secrets/envelope";
import { encodeMasterKey, generateMasterKey, masterKeyId } from "../../functions/secrets/keyring";

const dir = mkdtempSync(join(tmpdir(), "castellan-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
/** A path in this suite's directory that no other test uses. */
function freshPath(name = "master.key"): string {
	return join(dir, `case-${++n}`, name);
}

function keyLines(path: string): string[] {
	return readFileSync(path, "utf8")
		.split("\n")
		.filter((l) => l.trim() !== "" && !l.startsWith("#"));
}

function writeKeyFile(path: string, keys: Uint8Array[], mode = 0o600): void {
	writeFileSync(path, `${keys.map(encodeMasterKey).join("\n")}\n`, { mode });
	chmodSync(path, mode); // writeFileSync's mode is filtered by the umask
}

async function failure(promise: Promise<unknown>): Promise<Error> {
	try {
		await promise;
	} catch (err) {
		return err as Error;
	}
	throw new Error("expected a failure");
}

const noEnv = {};

describe("master key file", () => {
	it("creates a missing file, and its directory, with one key and mode 0600", async () => {
		const path = freshPath();
		const first = await loadMasterKeyring({ file: path }, noEnv, { createIfMissing: true });
		expect(first.created).toBe(true);
		expect(statSync(path).mode & 0o777).toBe(0o600);
		expect(keyLines(path)).toHaveLength(1);
		expect(first.keyring.kids).toEqual([
			await masterKeyId(Buffer.from(keyLines(path)[0]!, "base64")),
		]);

		const again = await loadMasterKeyring({ file: path }, noEnv, { createIfMissing: true });
		expect(again.created).toBe(false);
		expect(again.keyring.kids).toEqual(first.keyring.kids);
	});

	it("does not invent a key unless asked to", async () => {
		const path = freshPath();
		const err = await failure(loadMasterKeyring({ file: path }, noEnv, { createIfMissing: false }));
		expect(err).toBeInstanceOf(MasterKeySourceError);
		expect(err.message).toBe(`master key file ${path} does not exist`);
	});

	it.each([0o644, 0o640, 0o604, 0o620])(
		"refuses a key file with mode %o, naming the fix",
		async (mode) => {
			const path = join(dir, `open-${mode.toString(8)}.key`);
			const key = generateMasterKey();
			writeKeyFile(path, [key], mode);
			const err = await failure(
				loadMasterKeyring({ file: path }, noEnv, { createIfMissing: true }),
			);
			expect(err).toBeInstanceOf(MasterKeySourceError);
			expect(err.message).toContain(path);
			expect(err.message).toContain(`chmod 600 ${path}`);
			expect(err.message).toContain(`mode 0${mode.toString(8)}`);
			expect(err.message).not.toContain(encodeMasterKey(key).slice(0, 16));
			// Creating must not have replaced the existing key.
			expect(keyLines(path)).toEqual([encodeMasterKey(key)]);
		},
	);

	it("names the bad line of a key file without printing it", async () => {
		const path = freshPath("bad.key");
		await loadMasterKeyring({ file: path }, noEnv, { createIfMissing: true });
		const short = encodeMasterKey(generateMasterKey().subarray(0, 20));
		writeFileSync(path, `${readFileSync(path, "utf8")}${short}\n`);
		const err = await failure(loadMasterKeyring({ file: path }, noEnv, { createIfMissing: false }));
		expect(err.message).toMatch(
			new RegExp(`^key 2 \\(line \\d+\\) of ${path} decodes to 20 bytes`),
		);
		expect(err.message).not.toContain(short);
	});
});

describe("master keys from an environment variable", () => {
	it("names a missing or empty variable", async () => {
		for (const env of [{}, { CASTELLAN_MASTER_KEYS: "  " }]) {
			const err = await failure(
				loadMasterKeyring({ env: "CASTELLAN_MASTER_KEYS" }, env, { createIfMissing: true }),
			);
			expect(err).toBeInstanceOf(MasterKeySourceError);
			expect(err.message).toMatch(/^environment variable CASTELLAN_MASTER_KEYS is not set/);
		}
	});

	it("reads comma-separated keys, current first", async () => {
		const [a, b] = [generateMasterKey(), generateMasterKey()];
		const env = { KEYS: `${encodeMasterKey(a)},${encodeMasterKey(b)}` };
		const { keyring, created } = await loadMasterKeyring({ env: "KEYS" }, env, {
			createIfMissing: true,
		});
		expect(created).toBe(false);
		expect(keyring.kids).toEqual([await masterKeyId(a), await masterKeyId(b)]);
	});

	it("names the bad entry without printing it", async () => {
		const good = encodeMasterKey(generateMasterKey());
		const env = { KEYS: `${good},${good.slice(0, 30)}` };
		const err = await failure(loadMasterKeyring({ env: "KEYS" }, env, { createIfMissing: false }));
		expect(err.message).toBe("key 2 of KEYS is not valid base64");
	});
});

describe("adding and retiring keys", () => {
	it("puts a new current key first, keeps the old keys and comments, stays 0600", async () => {
		const path = freshPath();
		const created = await loadMasterKeyring({ file: path }, noEnv, { createIfMissing: true });
		const oldLines = keyLines(path);
		const comments = readFileSync(path, "utf8")
			.split("\n")
			.filter((l) => l.startsWith("#"));

		const added = await addKeyToFile(path);
		expect(added.kids).toEqual([added.kid, ...created.keyring.kids]);
		expect(keyLines(path).slice(1)).toEqual(oldLines);
		expect(
			readFileSync(path, "utf8")
				.split("\n")
				.filter((l) => l.startsWith("#")),
		).toEqual(comments);
		expect(statSync(path).mode & 0o777).toBe(0o600);
		expect(readdirSync(join(path, ".."))).toEqual(["master.key"]); // no temp file left behind

		const reloaded = await loadMasterKeyring({ file: path }, noEnv, { createIfMissing: false });
		expect(reloaded.keyring.kids).toEqual(added.kids);
	});

	it("a secret sealed before adding a key still opens, and new secrets use the new key", async () => {
		const path = freshPath();
		const binding = certificateKeyBinding("ten_a", "crt_a");
		const before = createSecretBox(
			(await loadMasterKeyring({ file: path }, noEnv, { createIfMissing: true })).keyring,
		);
		const old = await before.seal("old secret", binding);
		const { kid } = await addKeyToFile(path);
		const after = (await loadMasterKeyring({ file: path }, noEnv, { createIfMissing: false }))
			.keyring;
		expect(after.current.kid).toBe(kid);
		expect(await createSecretBox(after).openText(old, binding)).toBe("old secret");
	});

	it("retires every key but the first", async () => {
		const path = freshPath();
		await loadMasterKeyring({ file: path }, noEnv, { createIfMissing: true });
		const first = await addKeyToFile(path);
		const second = await addKeyToFile(path);
		const retired = await retireOldKeys(path);
		expect(retired).toEqual({ kept: second.kid, retired: first.kids });
		const { keyring } = await loadMasterKeyring({ file: path }, noEnv, { createIfMissing: false });
		expect(keyring.kids).toEqual([second.kid]);
		expect(statSync(path).mode & 0o777).toBe(0o600);
		expect(await retireOldKeys(path)).toEqual({ kept: second.kid, retired: [] });
	});

	it("will not rewrite a key file that others can read", async () => {
		const path = join(dir, "shared-add.key");
		writeKeyFile(path, [generateMasterKey()], 0o644);
		await expect(addKeyToFile(path)).rejects.toThrow(`chmod 600 ${path}`);
		await expect(retireOldKeys(path)).rejects.toThrow(`chmod 600 ${path}`);
	});
});
