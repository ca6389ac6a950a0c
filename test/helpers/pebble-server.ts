/**
 * A real Pebble (Let's Encrypt's test ACME CA) for a test suite, from the Debian package:
 * its HTTPS certificate generated here (the package ships none), ports chosen free on 127.0.0.1,
 * state in a temporary directory, DNS-01 resolved through the DNS server the caller gives.
 *
 *   const pebble = await startPebble({ dnsServer: pdns.dnsAddress });
 *   // pebble.directoryUrl + pebble.tlsCaPem for the acme issuer; pebble.rootsPem() for clients
 *   await pebble.stop();
 */
// @peculiar/x509 needs the Reflect polyfill loaded before it.
import "reflect-metadata";
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as https from "node:https";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import * as x509 from "@peculiar/x509";
import { freeTcpPort, type ServerProcess, spawnServer } from "./server-process";

const START_DEADLINE_MS = 20_000;
const POLL_MS = 50;

export interface PebbleOptions {
	/** `host:port` of the DNS server Pebble asks for `_acme-challenge` TXT records. */
	dnsServer: string;
	/** External Account Binding keys (kid -> base64url HMAC key); when given, EAB is required. */
	externalAccountMacKeys?: Record<string, string>;
	/** Names Pebble refuses with `rejectedIdentifier`. */
	domainBlocklist?: string[];
}

export interface PebbleServer {
	/** `https://127.0.0.1:<port>/dir` */
	directoryUrl: string;
	/** `https://127.0.0.1:<port>`: roots, intermediates and their keys (never exposed by a real CA). */
	managementUrl: string;
	/** The self-signed certificate of Pebble's HTTPS listeners: what an ACME client must trust. */
	tlsCaPem: string;
	/** The root the certificates Pebble issues chain to (new on every start of Pebble). */
	rootsPem(): Promise<string>;
	/** What pebble printed so far (the last 64 KiB), for failure messages. */
	logs(): string;
	/** Stops the process (SIGTERM, then SIGKILL after a deadline) and deletes the directory. */
	stop(): Promise<void>;
}

/** Starts `pebble`; fails (never skips) with the install command when it is missing. */
export async function startPebble(options: PebbleOptions): Promise<PebbleServer> {
	const binary = findBinary("pebble");
	const dir = mkdtempSync(join(tmpdir(), "castellan-pebble-"));
	try {
		const tls = await selfSignedTls();
		writeFileSync(join(dir, "cert.pem"), tls.certPem);
		writeFileSync(join(dir, "key.pem"), tls.keyPem, { mode: 0o600 });
		// Ports are free when chosen but may be taken before pebble binds them: choose again then.
		for (let attempt = 1; ; attempt++) {
			const [listen, management] = [await freeTcpPort(), await freeTcpPort()];
			const configFile = join(dir, "pebble-config.json");
			writeFileSync(
				configFile,
				JSON.stringify({ pebble: pebbleConfig(dir, listen, management, options) }, null, 2),
			);
			const running = launch(binary, configFile, options.dnsServer);
			const directoryUrl = `https://127.0.0.1:${listen}/dir`;
			try {
				await waitUntilReady(running, directoryUrl, tls.certPem);
			} catch (err) {
				await running.stop();
				if (attempt < 3 && /address already in use/i.test(running.logs())) continue;
				throw err;
			}
			const managementUrl = `https://127.0.0.1:${management}`;
			let stopped: Promise<void> | undefined;
			return {
				directoryUrl,
				managementUrl,
				tlsCaPem: tls.certPem,
				rootsPem: async () => {
					const { status, body } = await httpsGet(`${managementUrl}/roots/0`, tls.certPem);
					if (status !== 200) throw new Error(`pebble /roots/0 answered ${status}: ${body}`);
					return body;
				},
				logs: running.logs,
				stop() {
					stopped ??= running.stop().finally(() => rmSync(dir, { recursive: true, force: true }));
					return stopped;
				},
			};
		}
	} catch (err) {
		rmSync(dir, { recursive: true, force: true });
		throw err;
	}
}

/** The packaged example config (/usr/share/doc/pebble/examples/), with our files and ports. */
function pebbleConfig(dir: string, listen: number, management: number, options: PebbleOptions) {
	const eab = options.externalAccountMacKeys;
	return {
		listenAddress: `127.0.0.1:${listen}`,
		managementListenAddress: `127.0.0.1:${management}`,
		certificate: join(dir, "cert.pem"),
		privateKey: join(dir, "key.pem"),
		// Only used to reach http-01 and tls-alpn-01 targets, which these tests never offer.
		httpPort: 5002,
		tlsPort: 5001,
		ocspResponderURL: "",
		externalAccountBindingRequired: eab !== undefined,
		...(eab ? { externalAccountMACKeys: eab } : {}),
		...(options.domainBlocklist ? { domainBlocklist: options.domainBlocklist } : {}),
	};
}

type Running = ServerProcess;

function launch(binary: string, configFile: string, dnsServer: string): Running {
	return spawnServer(binary, ["-config", configFile, "-dnsserver", dnsServer], {
		...process.env,
		// Validate at once, never reject a good nonce, never reuse an authorization: each
		// issuance really publishes and validates its challenges, and runs at full speed.
		PEBBLE_VA_NOSLEEP: "1",
		PEBBLE_WFE_NONCEREJECT: "0",
		PEBBLE_AUTHZREUSE: "0",
	});
}

/** Polls the directory until it answers 200 over TLS we trust; fails early if pebble exits. */
async function waitUntilReady(running: Running, directoryUrl: string, caPem: string) {
	const deadline = Date.now() + START_DEADLINE_MS;
	let last = "no answer yet";
	while (Date.now() < deadline) {
		if (running.hasExited()) {
			throw new Error(`pebble exited during start (${await running.exited}):\n${running.logs()}`);
		}
		try {
			const { status } = await httpsGet(directoryUrl, caPem);
			if (status === 200) return;
			last = `HTTP ${status}`;
		} catch (err) {
			last = err instanceof Error ? err.message : String(err);
		}
		await new Promise((resolve) => setTimeout(resolve, POLL_MS));
	}
	throw new Error(
		`pebble did not answer on ${directoryUrl} within ${START_DEADLINE_MS} ms (${last}):\n${running.logs()}`,
	);
}

/** One GET trusting only `caPem` (global fetch cannot be given a CA on Node 20). */
export function httpsGet(url: string, caPem: string): Promise<{ status: number; body: string }> {
	return new Promise((resolve, reject) => {
		const request = https.get(url, { ca: caPem, agent: false, timeout: 2_000 }, (response) => {
			let body = "";
			response.setEncoding("utf8");
			response.on("data", (chunk: string) => {
				body += chunk;
			});
			response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
			response.on("error", reject);
		});
		request.on("timeout", () => request.destroy(new Error(`GET ${url}: no answer in 2 s`)));
		request.on("error", reject);
	});
}

/** A P-256 certificate for 127.0.0.1 and localhost, self-signed, for Pebble's listeners. */
async function selfSignedTls(): Promise<{ certPem: string; keyPem: string }> {
	const keys = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
		"sign",
		"verify",
	])) as CryptoKeyPair;
	const now = Date.now();
	const cert = await x509.X509CertificateGenerator.createSelfSigned({
		serialNumber: "01",
		name: "CN=Pebble test listener",
		notBefore: new Date(now - 60_000),
		notAfter: new Date(now + 24 * 60 * 60 * 1000),
		signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
		keys,
		extensions: [
			new x509.BasicConstraintsExtension(false, undefined, true),
			new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
			new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
			new x509.SubjectAlternativeNameExtension([
				{ type: "ip", value: "127.0.0.1" },
				{ type: "dns", value: "localhost" },
			]),
		],
	});
	const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
	return {
		certPem: `${cert.toString("pem")}\n`,
		keyPem: `${x509.PemConverter.encode(pkcs8, "PRIVATE KEY")}\n`,
	};
}

function findBinary(name: string): string {
	const dirs = [...(process.env["PATH"] ?? "").split(delimiter), "/usr/bin", "/usr/local/bin"];
	const binary = dirs.map((d) => join(d, name)).find(isExecutable);
	if (!binary) {
		throw new Error(
			[
				"missing Debian package for the test suite: pebble",
				"run as root: apt-get update && apt-get install -y pebble",
				"(scripts/install-test-deps.sh does this when run as root)",
			].join("\n"),
		);
	}
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
