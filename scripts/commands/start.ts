import { hostname } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { createApp } from "../../functions/api/app";
import { isEmbedded } from "../../functions/node/open-platform";
import { startProvisioningHost } from "../../functions/node/provisioning-host";
import { startScheduler } from "../../functions/node/scheduler-host";
import { jsonLogger } from "../../functions/runtime";
import { type CommandIo, loadConfig, openPlatformFor, parseFlags } from "../lib/cli";
import { seedDemoDataPlanes } from "../lib/demo-data-planes";
import { startEdge } from "../lib/start-edge";
import { writeTrustBundle } from "../lib/trust-bundle";

/**
 * `castellan start`: the all-in-one self-hosted node. Refuses to start on any config
 * violation; on the embedded default it migrates, creates the master key and the regional
 * CAs, and starts one demo origin per region so a tenant answers on the first try.
 */
export async function start(args: string[], io: CommandIo): Promise<number> {
	const flags = parseFlags(args, { host: { type: "string" } });
	const { config, source, isDefault } = loadConfig(flags.config, io);
	const logger = jsonLogger(
		(line) => io.err(line),
		(io.env.CASTELLAN_LOG_LEVEL as "info") ?? "info",
	);
	const platform = await openPlatformFor(config, io, { migrate: isEmbedded(config), logger });
	const host = flags.host ?? "127.0.0.1";

	const caPath = join(config.dataDir, "ca.pem");
	await writeTrustBundle(platform, caPath);
	const origins = isDefault ? await seedDemoDataPlanes(platform, host) : [];
	// Health probes, failover and renewals; the edge's failed connections trigger a probe at once.
	const scheduler = startScheduler(platform, { holder: nodeHolder(config.ports.api) });
	const edge = await startEdge(platform, {
		host,
		httpsPort: config.ports.https,
		httpPort: config.ports.http,
		onInstanceSuspect: (instanceId) => scheduler.suspect(instanceId),
	});
	const provisioning = startProvisioningHost(platform, { holder: nodeHolder(config.ports.api) });
	const app = createApp(platform, { jobsQueued: provisioning.kick });
	const api = serve({ fetch: app.fetch, port: config.ports.api, hostname: host });
	await new Promise<void>((resolve, reject) => {
		api.once("listening", resolve);
		api.once("error", reject);
	});

	const base = `${config.baseDomain}`;
	io.out(`Castellan is up (config: ${source})`);
	if (platform.masterKeyCreated)
		io.out(`  master key created:  ${masterKeyPath(config)} (mode 0600; back it up)`);
	io.out(`  control API:         http://${host}:${config.ports.api}/v1`);
	io.out(`  edge (HTTPS):        https://<tenant>.${base}:${edge.httpsPort}/`);
	io.out(`  edge (HTTP):         http://<tenant>.${base}:${edge.httpPort}/ (redirects to HTTPS)`);
	io.out(`  trust bundle:        ${caPath}`);
	for (const o of origins)
		io.out(`  demo origin:         ${o.regionId} at http://${host}:${o.port}`);
	io.out("");
	io.out("Get an API token:     npm run castellan -- token create --scope admin");
	io.out(
		"Create a tenant:      npm run castellan -- tenant create --slug acme --region eu-central",
	);
	io.out(`Then:                 curl --cacert ${caPath} https://acme.${base}:${edge.httpsPort}/`);

	const stop = async () => {
		api.close();
		await provisioning.stop();
		await scheduler.stop();
		await edge.close();
		for (const o of origins) await o.close();
		platform.close();
		process.exit(0);
	};
	process.once("SIGINT", stop);
	process.once("SIGTERM", stop);
	return 0;
}

function masterKeyPath(config: {
	masterKey?: { file: string } | { env: string };
	dataDir: string;
}): string {
	return config.masterKey && "file" in config.masterKey
		? config.masterKey.file
		: join(config.dataDir, "master.key");
}

/** Stable across restarts of this node, so it resumes its own job leases at once. */
function nodeHolder(apiPort: number): string {
	return `${hostname()}:${apiPort}`;
}
