import { existsSync, readFileSync } from "node:fs";
import { extname, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { defaultConfig } from "../config/default-config";

export interface ConfigDocument {
	/** Where the document came from: a path, or "built-in default". */
	source: string;
	/** The raw document with environment overrides applied, not yet validated. */
	document: unknown;
	isDefault: boolean;
}

export class ConfigFileError extends Error {
	override name = "ConfigFileError";
}

const DEFAULT_NAMES = ["castellan.config.json", "castellan.config.yaml", "castellan.config.yml"];

/**
 * Finds and reads the configuration: `--config`, else CASTELLAN_CONFIG, else a
 * castellan.config.{json,yaml} in the working directory, else the built-in default.
 */
export function readConfigDocument(
	flagPath: string | undefined,
	env: Record<string, string | undefined>,
	cwd = process.cwd(),
): ConfigDocument {
	const explicit = flagPath ?? env.CASTELLAN_CONFIG;
	const path = explicit
		? resolve(cwd, explicit)
		: DEFAULT_NAMES.map((n) => resolve(cwd, n)).find((p) => existsSync(p));
	if (!path) {
		const document = applyEnvOverrides(defaultConfig(env.CASTELLAN_DATA_DIR ?? "data"), env);
		return { source: "built-in default", document, isDefault: true };
	}
	let text: string;
	try {
		text = readFileSync(path, "utf8");
	} catch (err) {
		throw new ConfigFileError(
			`cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`,
		);
	}
	let document: unknown;
	try {
		document = extname(path) === ".json" ? JSON.parse(text) : parseYaml(text);
	} catch (err) {
		throw new ConfigFileError(
			`config file ${path} is not valid ${extname(path) === ".json" ? "JSON" : "YAML"}: ${(err as Error).message}`,
		);
	}
	return { source: path, document: applyEnvOverrides(document, env), isDefault: false };
}

/**
 * Environment overrides, applied to the raw document so that a bad value is reported by the
 * same validation, at the same path, as if it had been written in the file.
 */
export function applyEnvOverrides(
	document: unknown,
	env: Record<string, string | undefined>,
): unknown {
	if (typeof document !== "object" || document === null || Array.isArray(document)) return document;
	const doc = structuredClone(document) as Record<string, unknown>;
	const set = (name: string, apply: (value: string) => void) => {
		const value = env[name];
		if (value !== undefined && value !== "") apply(value);
	};
	const obj = (key: string): Record<string, unknown> => {
		const current = doc[key];
		if (typeof current === "object" && current !== null && !Array.isArray(current)) {
			return current as Record<string, unknown>;
		}
		const fresh: Record<string, unknown> = {};
		doc[key] = fresh;
		return fresh;
	};
	const portValue = (v: string) => (/^\d+$/.test(v) ? Number(v) : v);

	set("CASTELLAN_BASE_DOMAIN", (v) => {
		doc.baseDomain = v;
	});
	set("CASTELLAN_DATA_DIR", (v) => {
		doc.dataDir = v;
	});
	set("CASTELLAN_HTTPS_PORT", (v) => {
		obj("ports").https = portValue(v);
	});
	set("CASTELLAN_HTTP_PORT", (v) => {
		obj("ports").http = portValue(v);
	});
	set("CASTELLAN_API_PORT", (v) => {
		obj("ports").api = portValue(v);
	});
	set("CASTELLAN_CATALOG_URL", (v) => {
		obj("catalog").url = v;
	});
	set("CASTELLAN_CATALOG_AUTH_TOKEN", (v) => {
		obj("catalog").authToken = v;
	});
	if (env.CASTELLAN_MASTER_KEY_FILE) doc.masterKey = { file: env.CASTELLAN_MASTER_KEY_FILE };
	else if (env.CASTELLAN_MASTER_KEY && doc.masterKey === undefined) {
		doc.masterKey = { env: "CASTELLAN_MASTER_KEY" };
	}
	if (Array.isArray(doc.regions)) {
		for (const region of doc.regions as Array<Record<string, unknown>>) {
			if (typeof region?.id !== "string") continue;
			const prefix = `CASTELLAN_REGION_${region.id.toUpperCase().replaceAll("-", "_")}_DATABASE`;
			const url = env[`${prefix}_URL`];
			const authToken = env[`${prefix}_AUTH_TOKEN`];
			if (!url && !authToken) continue;
			const database = { ...(region.database as Record<string, unknown> | undefined) };
			if (url) database.url = url;
			if (authToken) database.authToken = authToken;
			region.database = database;
		}
	}
	return doc;
}
