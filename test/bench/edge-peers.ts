import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
	freePort,
	type ManagedProcess,
	type ProcessGroup,
	tail,
	waitForPort,
} from "./edge-processes";

/** What every origin answers: small and fixed, so the origin is never the bottleneck. */
export const ORIGIN_BODY = "castellan bench origin\n";

export interface RunningServer {
	port: number;
	process: ManagedProcess;
	/** Where its configuration and logs are (for the report and for errors). */
	dir: string;
	stop(): Promise<void>;
}

export interface TlsFiles {
	hostname: string;
	certFile: string;
	keyFile: string;
}

async function started(
	process: ManagedProcess,
	port: number,
	dir: string,
	log: string,
): Promise<RunningServer> {
	try {
		await waitForPort(process, port);
	} catch (err) {
		await process.stop();
		throw new Error(`${(err as Error).message}\n--- ${log} ---\n${tail(log)}`);
	}
	return { port, process, dir, stop: () => process.stop() };
}

/** Settings every nginx instance here shares: everything inside its own directory, no access log. */
function nginxMain(dir: string, workers: number | "auto"): string {
	const temp = join(dir, "temp");
	mkdirSync(temp, { recursive: true });
	// As root the master would start workers as `nobody`, who cannot enter the private temp dir.
	const user = process.getuid?.() === 0 ? "user root;\n" : "";
	return `${user}worker_processes ${workers};
daemon off;
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "error.log")} warn;
events { worker_connections 4096; }
`;
}

function nginxHttpCommon(dir: string): string {
	const temp = join(dir, "temp");
	return `	access_log off;
	client_body_temp_path ${temp}/body;
	proxy_temp_path ${temp}/proxy;
	fastcgi_temp_path ${temp}/fastcgi;
	uwsgi_temp_path ${temp}/uwsgi;
	scgi_temp_path ${temp}/scgi;
	# nginx closes a keep-alive connection after 1000 requests by default; Node and Caddy do not.
	keepalive_requests 1000000;
	keepalive_timeout 75s;
`;
}

async function startNginx(
	processes: ProcessGroup,
	nginx: string,
	name: string,
	dir: string,
	config: string,
	port: number,
): Promise<RunningServer> {
	mkdirSync(dir, { recursive: true });
	const conf = join(dir, "nginx.conf");
	writeFileSync(conf, config);
	const log = join(dir, "stdout.log");
	// -e: the error log before the config is read, so nothing is written to /var/log.
	const p = processes.spawn(name, nginx, ["-p", dir, "-c", conf, "-e", join(dir, "error.log")], {
		logFile: log,
	});
	return started(p, port, dir, join(dir, "error.log"));
}

/** The origin: nginx answering a fixed body from one worker. */
export async function startNginxOrigin(
	processes: ProcessGroup,
	nginx: string,
	dir: string,
): Promise<RunningServer> {
	const port = await freePort();
	const body = ORIGIN_BODY.replace(/\n/g, "\\n");
	const config = `${nginxMain(dir, 1)}
http {
${nginxHttpCommon(dir)}
	server {
		listen 127.0.0.1:${port} reuseport backlog=4096;
		location / {
			default_type text/plain;
			return 200 "${body}";
		}
	}
}
`;
	return startNginx(processes, nginx, "origin (nginx)", dir, config, port);
}

/** Fallback origin when nginx is missing: plain node:http in its own process. */
export async function startNodeOrigin(
	processes: ProcessGroup,
	dir: string,
): Promise<RunningServer> {
	mkdirSync(dir, { recursive: true });
	const port = await freePort();
	const script = `
const body = Buffer.from(${JSON.stringify(ORIGIN_BODY)});
require("node:http").createServer({ keepAliveTimeout: 75000 }, (req, res) => {
	req.resume();
	res.writeHead(200, { "content-type": "text/plain", "content-length": body.length });
	res.end(body);
}).listen(${port}, "127.0.0.1");
`;
	const log = join(dir, "origin.log");
	const p = processes.spawn("origin (node:http)", process.execPath, ["-e", script], {
		logFile: log,
	});
	return started(p, port, dir, log);
}

/**
 * nginx as TLS reverse proxy: keep-alive upstream pool, and the same per-request work the edge
 * does (forwarding headers, a request id both ways), so the comparison is like for like.
 */
export async function startNginxProxy(
	processes: ProcessGroup,
	nginx: string,
	dir: string,
	tls: TlsFiles,
	originPort: number,
	workers: number | "auto",
): Promise<RunningServer> {
	const port = await freePort();
	const config = `${nginxMain(dir, workers)}
http {
${nginxHttpCommon(dir)}
	upstream origin {
		server 127.0.0.1:${originPort};
		keepalive 64;
		keepalive_requests 1000000;
	}
	server {
		listen 127.0.0.1:${port} ssl backlog=4096;
		server_name ${tls.hostname};
		ssl_certificate ${tls.certFile};
		ssl_certificate_key ${tls.keyFile};
		ssl_protocols TLSv1.2 TLSv1.3;
		location / {
			proxy_pass http://origin;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host $http_host;
			proxy_set_header X-Forwarded-For $remote_addr;
			proxy_set_header X-Forwarded-Proto https;
			proxy_set_header X-Forwarded-Host $http_host;
			proxy_set_header Forwarded "for=$remote_addr;host=\\"$http_host\\";proto=https";
			proxy_set_header X-Request-Id $request_id;
			add_header X-Request-Id $request_id always;
		}
	}
}
`;
	return startNginx(processes, nginx, `nginx (${workers} workers)`, dir, config, port);
}

/**
 * Caddy as TLS reverse proxy with the tenant's certificate from files. Admin API, automatic
 * HTTPS and trust-store installation are off: the bench must not touch anything outside `dir`.
 * The upstream keeps up to 64 idle connections, like nginx's `keepalive 64` (Caddy's default is 32).
 */
export async function startCaddyProxy(
	processes: ProcessGroup,
	caddy: string,
	dir: string,
	tls: TlsFiles,
	originPort: number,
	gomaxprocs: number | undefined,
): Promise<RunningServer> {
	mkdirSync(dir, { recursive: true });
	const port = await freePort();
	const caddyfile = join(dir, "Caddyfile");
	writeFileSync(
		caddyfile,
		`{
	admin off
	auto_https off
	skip_install_trust
	storage file_system ${join(dir, "data")}
}

https://${tls.hostname}:${port} {
	bind 127.0.0.1
	tls ${tls.certFile} ${tls.keyFile}
	header X-Request-Id {http.request.uuid}
	reverse_proxy 127.0.0.1:${originPort} {
		header_up X-Request-Id {http.request.uuid}
		header_up Forwarded "for={remote_host};host={host};proto=https"
		transport http {
			keepalive 75s
			keepalive_idle_conns_per_host 64
		}
	}
}
`,
	);
	const log = join(dir, "caddy.log");
	const env: NodeJS.ProcessEnv = {
		...process.env,
		HOME: dir,
		XDG_DATA_HOME: join(dir, "data"),
		XDG_CONFIG_HOME: join(dir, "config"),
	};
	if (gomaxprocs !== undefined) env.GOMAXPROCS = String(gomaxprocs);
	else delete env.GOMAXPROCS;
	const p = processes.spawn(
		`caddy (GOMAXPROCS=${gomaxprocs ?? "default"})`,
		caddy,
		["run", "--config", caddyfile, "--adapter", "caddyfile"],
		{ env, logFile: log },
	);
	return started(p, port, dir, log);
}

/** The edge runner file, next to this one. */
export const EDGE_RUNNER = fileURLToPath(new URL("./edge-runner.ts", import.meta.url));

/** The minimal node:https proxy (edge-plain-proxy.ts): what Node costs before Castellan adds anything. */
export async function startPlainNodeProxy(
	processes: ProcessGroup,
	dir: string,
	tls: TlsFiles,
	originPort: number,
): Promise<RunningServer> {
	mkdirSync(dir, { recursive: true });
	const port = await freePort();
	const script = fileURLToPath(new URL("./edge-plain-proxy.ts", import.meta.url));
	const log = join(dir, "plain-proxy.log");
	const p = processes.spawn(
		"plain node:https proxy",
		process.execPath,
		["--import", "tsx", script, String(port), String(originPort), tls.certFile, tls.keyFile],
		{ logFile: log },
	);
	return started(p, port, dir, log);
}
