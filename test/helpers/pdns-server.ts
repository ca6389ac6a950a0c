/**
 * A real PowerDNS Authoritative server for a test suite: `pdns_server` with the gsqlite3
 * backend, its database initialised from the schema the Debian package ships, the HTTP API and
 * DNS (UDP and TCP) on free ports of 127.0.0.1, all state in a temporary directory.
 *
 *   const pdns = await startPdnsServer({ zones: ["tenants.example.test"] });
 *   // pdns.apiUrl + pdns.apiKey for the powerdns provider; pdns.dnsAddress for Pebble's -dnsserver
 *   await pdns.query("www.tenants.example.test", "A"); // answers through a real DNS query
 *   await pdns.stop();
 */
import { createSocket } from "node:dgram";
import { Resolver } from "node:dns/promises";
import {
	accessSync,
	constants,
	existsSync,
	mkdtempSync,
	readFileSync,
	rmSync,
	writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { createClient } from "@libsql/client";
import { freeTcpPort, type ServerProcess, spawnServer } from "./server-process";

export { freeTcpPort };

export const PDNS_SCHEMA = "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql";
const START_DEADLINE_MS = 20_000;
const POLL_MS = 50;

export type PdnsQueryType = "A" | "AAAA" | "CNAME" | "TXT" | "NS";

export interface PdnsServerOptions {
	/** Zones to create once the server answers (lower case, no trailing dot). */
	zones?: string[];
	/** The API key; a random one by default. */
	apiKey?: string;
}

export interface PdnsServer {
	/** Base URL of the HTTP API, e.g. `http://127.0.0.1:40123` (the provider's `apiUrl`). */
	apiUrl: string;
	apiKey: string;
	/** The PowerDNS server id of the API (`/api/v1/servers/localhost`). */
	serverId: string;
	dnsPort: number;
	/** `127.0.0.1:<dnsPort>`: what a resolver (Pebble's `-dnsserver`, node:dns) is pointed at. */
	dnsAddress: string;
	/** The temporary directory holding the database, config dir and control socket. */
	dir: string;
	/** Creates a Native zone with an `ns1.<zone>` NS record; an existing zone is left as it is. */
	createZone(zone: string): Promise<void>;
	/** The answers of a real DNS query to the server; [] for NXDOMAIN or no data. TXT strings joined. */
	query(name: string, type: PdnsQueryType): Promise<string[]>;
	/** What pdns_server printed so far (the last 64 KiB), for failure messages. */
	logs(): string;
	/** Stops the process (SIGTERM, then SIGKILL after a deadline) and deletes the directory. */
	stop(): Promise<void>;
}

/** Starts `pdns_server`; fails (never skips) with the install command when it is missing. */
export async function startPdnsServer(options: PdnsServerOptions = {}): Promise<PdnsServer> {
	const binary = findPdnsServer();
	const apiKey = options.apiKey ?? `test-${crypto.randomUUID()}`;
	const dir = mkdtempSync(join(tmpdir(), "castellan-pdns-"));
	try {
		const database = join(dir, "pdns.sqlite3");
		await initialiseDatabase(database);
		writeFileSync(join(dir, "pdns.conf"), "");
		// Ports are free when chosen but may be taken before pdns binds them: choose again then.
		for (let attempt = 1; ; attempt++) {
			const dnsPort = await freeDnsPort();
			const apiPort = await freeTcpPort();
			const running = launch(binary, { dir, database, apiKey, dnsPort, apiPort });
			try {
				await waitUntilReady(running, apiKey);
			} catch (err) {
				await running.stop();
				if (attempt < 3 && /address already in use|unable to bind/i.test(running.logs())) continue;
				throw err;
			}
			const server = serverHandle(running, { dir, apiKey, dnsPort });
			for (const zone of options.zones ?? []) await server.createZone(zone);
			return server;
		}
	} catch (err) {
		rmSync(dir, { recursive: true, force: true });
		throw err;
	}
}

/** The message of scripts/install-test-deps.sh: the exact command that installs what is missing. */
export function pdnsInstallHint(missing: readonly string[]): string {
	return [
		`missing Debian packages for the test suite: ${missing.join(" ")}`,
		`run as root: apt-get update && apt-get install -y ${missing.join(" ")}`,
		"(scripts/install-test-deps.sh does this when run as root)",
	].join("\n");
}

function findPdnsServer(): string {
	const dirs = [...(process.env["PATH"] ?? "").split(delimiter), "/usr/sbin", "/usr/local/sbin"];
	const binary = dirs.map((d) => join(d, "pdns_server")).find(isExecutable);
	const missing = [
		...(binary ? [] : ["pdns-server"]),
		...(existsSync(PDNS_SCHEMA) ? [] : ["pdns-backend-sqlite3"]),
	];
	if (missing.length > 0 || !binary) throw new Error(pdnsInstallHint(missing));
	return binary;
}

function isExecutable(path: string): boolean {
	try {
		accessSync(path, constants.X_OK);
		return true;
	} catch {
		return false;
	}
}

/** The packaged schema, executed by the libSQL driver the project already ships (no sqlite3 CLI needed). */
async function initialiseDatabase(path: string): Promise<void> {
	const schema = readFileSync(PDNS_SCHEMA, "utf8");
	const client = createClient({ url: `file:${path}` });
	try {
		await client.executeMultiple(schema);
	} finally {
		client.close();
	}
}

interface Running extends ServerProcess {
	apiUrl: string;
}

function launch(
	binary: string,
	config: { dir: string; database: string; apiKey: string; dnsPort: number; apiPort: number },
): Running {
	const args = [
		`--config-dir=${config.dir}`,
		`--socket-dir=${config.dir}`,
		"--launch=gsqlite3",
		`--gsqlite3-database=${config.database}`,
		"--api=yes",
		`--api-key=${config.apiKey}`,
		"--webserver=yes",
		"--webserver-address=127.0.0.1",
		`--webserver-port=${config.apiPort}`,
		"--webserver-allow-from=127.0.0.0/8",
		"--local-address=127.0.0.1",
		`--local-port=${config.dnsPort}`,
		"--daemon=no",
		"--guardian=no",
		"--disable-syslog",
		"--write-pid=no",
		"--log-timestamp=no",
		// No outbound security-status query, and no caches: an answer reflects the last API change.
		"--security-poll-suffix=",
		"--cache-ttl=0",
		"--negquery-cache-ttl=0",
		"--query-cache-ttl=0",
		"--receiver-threads=1",
		"--distributor-threads=1",
	];
	const server = spawnServer(binary, args);
	return {
		apiUrl: `http://127.0.0.1:${config.apiPort}`,
		...server,
	};
}

/** Polls the API until it answers 200 with our key; fails early if the process exits. */
async function waitUntilReady(running: Running, apiKey: string): Promise<void> {
	const deadline = Date.now() + START_DEADLINE_MS;
	let last = "no answer yet";
	while (Date.now() < deadline) {
		if (running.hasExited()) {
			throw new Error(
				`pdns_server exited during start (${await running.exited}):\n${running.logs()}`,
			);
		}
		try {
			const response = await fetch(`${running.apiUrl}/api/v1/servers/localhost`, {
				headers: { "X-API-Key": apiKey },
				signal: AbortSignal.timeout(1000),
			});
			if (response.ok) return;
			last = `HTTP ${response.status}`;
		} catch (err) {
			last = err instanceof Error ? err.message : String(err);
		}
		await new Promise((resolve) => setTimeout(resolve, POLL_MS));
	}
	throw new Error(
		`pdns_server did not answer on ${running.apiUrl} within ${START_DEADLINE_MS} ms (${last}):\n${running.logs()}`,
	);
}

function serverHandle(
	running: Running,
	config: { dir: string; apiKey: string; dnsPort: number },
): PdnsServer {
	const dnsAddress = `127.0.0.1:${config.dnsPort}`;
	let stopped: Promise<void> | undefined;
	return {
		apiUrl: running.apiUrl,
		apiKey: config.apiKey,
		serverId: "localhost",
		dnsPort: config.dnsPort,
		dnsAddress,
		dir: config.dir,
		async createZone(zone) {
			const response = await fetch(`${running.apiUrl}/api/v1/servers/localhost/zones`, {
				method: "POST",
				headers: { "X-API-Key": config.apiKey, "Content-Type": "application/json" },
				body: JSON.stringify({
					name: `${zone}.`,
					kind: "Native",
					nameservers: [`ns1.${zone}.`],
				}),
			});
			if (response.status === 201 || response.status === 409) return;
			throw new Error(
				`creating zone ${zone} failed: HTTP ${response.status} ${await response.text()}`,
			);
		},
		async query(name, type) {
			const resolver = new Resolver({ timeout: 1000, tries: 3 });
			resolver.setServers([dnsAddress]);
			try {
				switch (type) {
					case "A":
						return await resolver.resolve4(name);
					case "AAAA":
						return await resolver.resolve6(name);
					case "CNAME":
						return await resolver.resolveCname(name);
					case "NS":
						return await resolver.resolveNs(name);
					case "TXT":
						return (await resolver.resolveTxt(name)).map((chunks) =>
							utf8FromOctets(chunks.join("")),
						);
				}
			} catch (err) {
				const code = (err as { code?: string }).code;
				if (code === "ENOTFOUND" || code === "ENODATA") return [];
				throw err;
			}
		},
		logs: running.logs,
		stop() {
			stopped ??= running.stop().finally(() => {
				rmSync(config.dir, { recursive: true, force: true });
			});
			return stopped;
		},
	};
}

/** c-ares hands TXT octets over one per character (latin1): put UTF-8 text back together. */
function utf8FromOctets(text: string): string {
	for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0xff) return text;
	return Buffer.from(text, "latin1").toString("utf8");
}

/** A TCP port on 127.0.0.1 nothing listens on right now (also what a test points at for "down"). */

/** A port free for both TCP and UDP, as DNS listens on both. */
async function freeDnsPort(): Promise<number> {
	for (let attempt = 0; attempt < 20; attempt++) {
		const port = await freeTcpPort();
		const socket = createSocket("udp4");
		const free = await new Promise<boolean>((resolve) => {
			socket.once("error", () => resolve(false));
			socket.bind(port, "127.0.0.1", () => resolve(true));
		});
		if (free) {
			await new Promise<void>((resolve) => socket.close(() => resolve()));
			return port;
		}
		try {
			socket.close();
		} catch {
			// A socket whose bind failed may already be closed.
		}
	}
	throw new Error("found no port free for both TCP and UDP on 127.0.0.1");
}
