import {
	closeSync,
	fsyncSync,
	mkdirSync,
	openSync,
	readFileSync,
	renameSync,
	rmSync,
	statSync,
	writeSync,
} from "node:fs";
import { dirname } from "node:path";
import {
	encodeMasterKey,
	generateMasterKey,
	type MasterKeyring,
	masterKeyId,
	parseMasterKeyList,
	parseMasterKeyring,
} from "../secrets/keyring";

/** Where the master keys come from: a key file (one base64 key per line) or an environment variable (comma-separated). */
export type MasterKeySource = { file: string } | { env: string };

export interface LoadedKeyring {
	keyring: MasterKeyring;
	/** True when the key file did not exist and a new key was written to it. */
	created: boolean;
}

export class MasterKeySourceError extends Error {
	override name = "MasterKeySourceError";
}

const FILE_HEADER = [
	"# Castellan master keys, one base64 key per line. The first seals new secrets; the others",
	"# only decrypt. Keep this file private (chmod 600) and backed up: without it the stored",
	"# secrets cannot be read.",
];

/**
 * Loads the keyring. A missing key file is created with one new random key when
 * `createIfMissing` (the embedded default); an environment variable is never invented.
 */
export async function loadMasterKeyring(
	source: MasterKeySource,
	env: Record<string, string | undefined>,
	opts: { createIfMissing: boolean },
): Promise<LoadedKeyring> {
	if ("env" in source) {
		const value = env[source.env];
		if (value === undefined || value.trim() === "") {
			throw new MasterKeySourceError(
				`environment variable ${source.env} is not set: it must hold the master keys, comma-separated base64, current first`,
			);
		}
		const keyring = await parseMasterKeyring(value, { format: "comma", source: source.env });
		return { keyring, created: false };
	}

	const path = source.file;
	let created = false;
	if (opts.createIfMissing && !exists(path)) {
		created = createKeyFile(path);
	}
	const keyring = await parseMasterKeyring(readKeyFile(path), { format: "lines", source: path });
	return { keyring, created };
}

/**
 * Puts a new random key first in the key file (it becomes current) and keeps the others, so
 * existing secrets still open. Other lines, comments included, are kept as they are.
 */
export async function addKeyToFile(path: string): Promise<{ kid: string; kids: string[] }> {
	const lines = readKeyFile(path).split(/\r?\n/);
	const existing = parseMasterKeyList(lines.join("\n"), { format: "lines", source: path });
	const key = generateMasterKey();
	const first = lines.findIndex(isKeyLine);
	lines.splice(first, 0, encodeMasterKey(key));
	writeFileAtomically(path, lines.join("\n"));
	const kids = [await masterKeyId(key)];
	for (const k of existing) kids.push(await masterKeyId(k));
	return { kid: kids[0]!, kids };
}

/**
 * Keeps only the first (current) key. Run it only after `rewrapAll` has moved every secret to
 * that key: a secret still sealed with a retired key can no longer be opened.
 */
export async function retireOldKeys(path: string): Promise<{ kept: string; retired: string[] }> {
	const lines = readKeyFile(path).split(/\r?\n/);
	const keys = parseMasterKeyList(lines.join("\n"), { format: "lines", source: path });
	let seenFirst = false;
	const kept = lines.filter((line) => {
		if (!isKeyLine(line)) return true;
		if (seenFirst) return false;
		seenFirst = true;
		return true;
	});
	if (keys.length > 1) writeFileAtomically(path, kept.join("\n"));
	const kids: string[] = [];
	for (const k of keys) kids.push(await masterKeyId(k));
	return { kept: kids[0]!, retired: kids.slice(1) };
}

function isKeyLine(line: string): boolean {
	const entry = line.trim();
	return entry !== "" && !entry.startsWith("#");
}

function exists(path: string): boolean {
	try {
		statSync(path);
		return true;
	} catch (err) {
		// Anything but "not there" (say EACCES) is reported by readKeyFile, with the path.
		return (err as NodeJS.ErrnoException).code !== "ENOENT";
	}
}

/** Writes a key file with one new key; false when another process created it first. */
function createKeyFile(path: string): boolean {
	mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
	const text = [...FILE_HEADER, encodeMasterKey(generateMasterKey()), ""].join("\n");
	try {
		// "wx": never overwrite a key file, whatever raced us to it.
		writeFileSyncExclusive(path, text);
		return true;
	} catch (err) {
		if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
		throw new MasterKeySourceError(
			`cannot create master key file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
		);
	}
}

/** Reads a key file after checking that only its owner can read or write it. */
function readKeyFile(path: string): string {
	let mode: number;
	try {
		const stat = statSync(path);
		if (!stat.isFile()) throw new MasterKeySourceError(`master key file ${path} is not a file`);
		mode = stat.mode;
	} catch (err) {
		if (err instanceof MasterKeySourceError) throw err;
		const code = (err as NodeJS.ErrnoException).code;
		throw new MasterKeySourceError(
			code === "ENOENT"
				? `master key file ${path} does not exist`
				: `cannot read master key file ${path}: ${code ?? String(err)}`,
		);
	}
	// POSIX permission bits mean nothing on Windows, where the file's ACL governs access.
	if (process.platform !== "win32" && (mode & 0o077) !== 0) {
		throw new MasterKeySourceError(
			`master key file ${path} is open to other users (mode ${(mode & 0o777).toString(8).padStart(4, "0")}): run \`chmod 600 ${path}\``,
		);
	}
	return readFileSync(path, "utf8");
}

function writeFileSyncExclusive(path: string, text: string): void {
	const fd = openSync(path, "wx", 0o600);
	try {
		writeSync(fd, text);
		fsyncSync(fd);
	} finally {
		closeSync(fd);
	}
}

/**
 * Replaces a key file so that a crash leaves either the old or the new file, never half of
 * one, and the rename is on disk before we return: a secret sealed with a key that was then
 * lost could never be opened again.
 */
function writeFileAtomically(path: string, text: string): void {
	const temp = `${path}.${crypto.randomUUID()}.tmp`;
	try {
		writeFileSyncExclusive(temp, text.endsWith("\n") ? text : `${text}\n`);
		renameSync(temp, path);
	} catch (err) {
		rmSync(temp, { force: true });
		throw new MasterKeySourceError(
			`cannot write master key file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
		);
	}
	syncDirectory(dirname(path));
}

function syncDirectory(dir: string): void {
	let fd: number | undefined;
	try {
		fd = openSync(dir, "r");
		fsyncSync(fd);
	} catch {
		// Some platforms (Windows) cannot fsync a directory; the rename is still atomic there.
	} finally {
		if (fd !== undefined) closeSync(fd);
	}
}
