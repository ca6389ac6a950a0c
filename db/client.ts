import type { Client, Config } from "@libsql/client/web";
import type { LibSQLDatabase } from "drizzle-orm/libsql/driver-core";
import { drizzle } from "drizzle-orm/libsql/web";
import * as catalogSchema from "./schema/catalog";
import * as regionSchema from "./schema/region";
import { serializeWrites } from "./serialize-writes";

export type CatalogDb = LibSQLDatabase<typeof catalogSchema>;
export type RegionDb = LibSQLDatabase<typeof regionSchema>;

/** `createClient` from `@libsql/client` (Node, native) or `@libsql/client/web` (Workers). */
export type CreateLibsqlClient = (config: Config) => Client;

export interface DatabaseLocation {
	/** What this database is for, used in error messages: "catalog" or "region eu-central". */
	label: string;
	url: string;
	authToken?: string | undefined;
}

const SUPPORTED_SCHEMES = ["file:", "libsql:", "http:", "https:", "ws:", "wss:"];

/** A URL safe to print: user info and query parameters (auth tokens) removed. */
export function redactUrl(url: string): string {
	if (url === ":memory:" || url.startsWith("file:")) return url.split("?")[0] ?? url;
	try {
		const u = new URL(url);
		u.username = "";
		u.password = "";
		u.search = "";
		return u.toString();
	} catch {
		return "<unparseable url>";
	}
}

export function isSupportedDatabaseUrl(url: string): boolean {
	return url === ":memory:" || SUPPORTED_SCHEMES.some((s) => url.startsWith(s));
}

export class DatabaseOpenError extends Error {
	constructor(
		readonly location: DatabaseLocation,
		cause: unknown,
	) {
		const reason = cause instanceof Error ? cause.message : String(cause);
		super(
			`cannot open the ${location.label} database at ${redactUrl(location.url)}: ${scrub(reason, location)}`,
		);
		this.name = "DatabaseOpenError";
	}
}

/** Removes credentials from a driver's message: URL user info, token query values, the token. */
function scrub(message: string, location: DatabaseLocation): string {
	let out = message.replace(/(\/\/)[^/\s@]+@/g, "$1");
	out = out.replace(/([?&](?:authToken|auth_token|token|jwt)=)[^&\s]+/gi, "$1<redacted>");
	if (location.authToken) out = out.split(location.authToken).join("<redacted>");
	return out;
}

/** Opens a libSQL client and proves it answers, so a bad URL fails at start, not mid-request. */
export async function openLibsql(
	createClient: CreateLibsqlClient,
	location: DatabaseLocation,
): Promise<Client> {
	if (!isSupportedDatabaseUrl(location.url)) {
		throw new DatabaseOpenError(
			location,
			new Error(`unsupported URL scheme (use file:, :memory:, libsql:, http: or https:)`),
		);
	}
	let client: Client | undefined;
	try {
		const embedded = location.url.startsWith("file:");
		// Embedded files: every pooled connection waits up to 5 s on a lock instead of failing.
		client = createClient({
			url: location.url,
			authToken: location.authToken,
			...(embedded ? { timeout: 5000 } : {}),
		});
		await client.execute("select 1");
		if (!embedded) return client;
		// WAL (persistent per file) lets the edge and the CLI read while jobs write.
		await client.execute("pragma journal_mode = wal");
		return serializeWrites(client);
	} catch (err) {
		client?.close();
		throw new DatabaseOpenError(location, err);
	}
}

export function catalogDb(client: Client): CatalogDb {
	return drizzle(client, { schema: catalogSchema });
}

export function regionDb(client: Client): RegionDb {
	return drizzle(client, { schema: regionSchema });
}
