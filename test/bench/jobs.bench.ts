/**
 * `npm run bench:jobs` (node --import tsx test/bench/jobs.bench.ts): the scheduled jobs,
 * measured on this machine, everything on 127.0.0.1. Never part of `npm test`.
 *
 *  (a) failover through the real Node edge: two EU origins under load, one killed; the time
 *      until the edge's route table no longer offers it (so no request is sent to it), the
 *      errors clients saw meanwhile, and any answer from outside the tenant's residency; with
 *      the 10 s default interval and with 1 s, and at 10 s without the edge's passive signal.
 *  (b) a renewal sweep over 1,000 due certificates against Pebble (DNS-01 through PowerDNS),
 *      with the default concurrency (4) and with 16; the internal CA for comparison.
 *  (c) one probe cycle over 1,000 nodes, each a real HTTP listener.
 *
 * Progress goes to stderr; the last line on stdout is one JSON object with the figures.
 */
import { createServer, type Server } from "node:http";
import { Agent, request } from "node:https";
import type { AddressInfo } from "node:net";
import { eq } from "drizzle-orm";
import { certificates, nodes, routes, tenants } from "../../db/schema/region";
import { startNodeEdge } from "../../edge/node/start-node-edge";
import { probeNodes } from "../../functions/jobs/probe-nodes";
import { renewDueCertificates } from "../../functions/jobs/renew-due-certificates";
import { startScheduler } from "../../functions/node/scheduler-host";
import { systemClock } from "../../functions/runtime";
import { registerNode } from "../../functions/services/nodes";
import { runDueJobs } from "../../functions/services/provisioning/run-jobs";
import { createTenant } from "../../functions/services/tenants";
import { FakeClock } from "../helpers/fake-clock";
import { startPdnsServer } from "../helpers/pdns-server";
import { startPebble } from "../helpers/pebble-server";
import { createTestPlatform } from "../helpers/test-platform";
import { createJobsFixture, EU, ZONE } from "../jobs/helpers/jobs-fixture";

const log = (line: string) => process.stderr.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Origin {
	name: string;
	port: number;
	hits: number;
	kill(): Promise<void>;
}

async function startOrigin(name: string): Promise<Origin> {
	const origin: Origin = { name, port: 0, hits: 0, kill: async () => {} };
	const server: Server = createServer((req, res) => {
		origin.hits++;
		res.writeHead(200, { "content-type": "text/plain" });
		res.end(req.url === "/health" ? "ok" : name);
	});
	server.keepAliveTimeout = 30_000;
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	origin.port = (server.address() as AddressInfo).port;
	origin.kill = async () => {
		server.closeAllConnections();
		await new Promise<void>((resolve) => server.close(() => resolve()));
	};
	return origin;
}

// ---------------------------------------------------------------- (a) failover through the edge

interface FailoverRun {
	failoverMs: number;
	errors: number;
	requestsInWindow: number;
	residencyViolations: number;
	totalRequests: number;
}

async function failoverThroughEdge(intervalMs: number, passive: boolean): Promise<FailoverRun> {
	const t = await createTestPlatform({ clock: systemClock });
	const platform = t.platform;
	const [euA, euB, us] = [
		await startOrigin("eu-a"),
		await startOrigin("eu-b"),
		await startOrigin("us-1"),
	];
	const ctx = { platform, actor: "bench" };
	const nodeIds: Record<string, string> = {};
	for (const [region, o] of [
		["eu-central", euA],
		["eu-central", euB],
		["us-east", us],
	] as const) {
		const url = `http://127.0.0.1:${o.port}`;
		const { nodeId } = await registerNode({
			ctx,
			input: {
				regionId: region,
				name: o.name,
				address: "127.0.0.1",
				healthUrl: `${url}/health`,
				instanceUrls: [url],
			},
		});
		nodeIds[o.name] = nodeId;
		await platform.store
			.region(region)
			.db.update(nodes)
			.set({ state: "healthy", dnsAppliedState: "healthy" })
			.where(eq(nodes.id, nodeId));
	}
	await createTenant({ ctx, input: { id: "ten_bench", slug: "bench", homeRegion: "eu-central" } });
	await runDueJobs(platform, { holder: "bench" });
	const ca = (
		await platform.providers.get("issuer", "internal-ca").trustAnchors("eu-central")
	).join("\n");

	const scheduler = startScheduler(platform, {
		holder: "bench",
		probeIntervalMs: intervalMs,
		probeTimeoutMs: 1000,
	});
	const edge = await startNodeEdge({
		store: platform.store,
		secrets: platform.secrets,
		host: "127.0.0.1",
		httpsPort: 0,
		httpPort: 0,
		clock: systemClock,
		...(passive ? { onInstanceSuspect: (id: string) => scheduler.suspect(id) } : {}),
	});
	const agent = new Agent({ keepAlive: true, maxSockets: 16, ca });
	const samples: Array<{ at: number; ok: boolean; body: string }> = [];
	let running = true;
	const get = () =>
		new Promise<{ ok: boolean; body: string }>((resolve) => {
			const req = request(
				{
					host: "127.0.0.1",
					port: edge.httpsPort,
					servername: "bench.localhost",
					path: "/",
					agent,
					headers: { host: "bench.localhost" },
				},
				(res) => {
					let body = "";
					res.on("data", (c) => {
						body += c;
					});
					res.on("end", () => resolve({ ok: res.statusCode === 200, body }));
					res.on("error", () => resolve({ ok: false, body: "" }));
				},
			);
			req.on("error", () => resolve({ ok: false, body: "" }));
			req.end();
		});
	const loops = Array.from({ length: 16 }, async () => {
		while (running) {
			const r = await get();
			samples.push({ at: performance.now(), ...r });
		}
	});

	await sleep(2000 + Math.random() * intervalMs);
	const instanceOfA = [...edge.table().instances()].find((i) => i.nodeId === nodeIds["eu-a"])!;
	const killedAt = performance.now();
	await euA.kill();
	let droppedAt = 0;
	while (!droppedAt) {
		const current = [...edge.table().instances()].find((i) => i.id === instanceOfA.id);
		if (!current?.healthy) droppedAt = performance.now();
		else if (performance.now() - killedAt > 60_000)
			throw new Error("the edge never dropped the dead origin");
		else await sleep(2);
	}
	await sleep(500);
	running = false;
	await Promise.all(loops);
	const window = samples.filter((s) => s.at >= killedAt && s.at <= droppedAt);
	const result: FailoverRun = {
		failoverMs: Math.round(droppedAt - killedAt),
		errors: window.filter((s) => !s.ok).length,
		requestsInWindow: window.length,
		residencyViolations: samples.filter((s) => s.body === "us-1").length,
		totalRequests: samples.length,
	};
	agent.destroy();
	await edge.close();
	await scheduler.stop();
	for (const o of [euB, us]) await o.kill();
	t.close();
	return result;
}

// ---------------------------------------------------------------- (b) renewal sweep

/** Real time plus an offset: the ACME issuer's timeouts run, and a test can skip past backoffs. */
class MovingClock extends FakeClock {
	#offset = 0;
	override now(): Date {
		return new Date(Date.now() + this.#offset);
	}
	override advance(ms: number): void {
		this.#offset += ms;
	}
}

async function seedDueCertificates(
	platform: Awaited<ReturnType<typeof createJobsFixture>>["platform"],
	count: number,
	now: Date,
) {
	const db = platform.store.region(EU).db;
	const day = 24 * 60 * 60 * 1000;
	await db.transaction(async (tx) => {
		for (let i = 0; i < count; i++) {
			const id = `ten_b${i}`;
			const hostname = `r${i}.${ZONE}`;
			await tx.insert(tenants).values({
				id,
				slug: `r${i}`,
				profile: "standard",
				homeRegion: EU,
				allowedRegions: [EU],
				status: "active",
				createdAt: now,
				updatedAt: now,
			});
			await tx.insert(certificates).values({
				id: `crt_seed_${i}`,
				tenantId: id,
				hostname,
				issuer: "acme-eu",
				serial: `seed${i}`,
				chainPem: "(seeded: renewal reads only the name and the dates)",
				privateKeyCiphertext: "",
				// 90 days, 10 left: due (a third is 30).
				notBefore: new Date(now.getTime() - 80 * day),
				notAfter: new Date(now.getTime() + 10 * day),
				status: "active",
				createdAt: now,
			});
			await tx
				.insert(routes)
				.values({ hostname, tenantId: id, certificateId: `crt_seed_${i}`, updatedAt: now });
		}
	});
}

async function renewalSweep(): Promise<Record<string, number>> {
	const pdns = await startPdnsServer({ zones: [ZONE] });
	const pebble = await startPebble({ dnsServer: pdns.dnsAddress });
	const out: Record<string, number> = {};
	try {
		for (const [label, issuer, concurrency] of [
			["pebble_c4", "acme-eu", 4],
			["pebble_c16", "acme-eu", 16],
			["internal_ca_c4", "internal-ca", 4],
		] as const) {
			const fx = await createJobsFixture({ pdns, pebble, clock: new MovingClock() });
			await seedDueCertificates(fx.platform, 1000, fx.clock.now());
			if (issuer === "internal-ca") {
				// Same seeded rows, issued by the region's internal CA instead.
				fx.overrideIssuer("acme-eu", fx.realIssuer("internal-ca"));
			}
			// Warm the ACME account (registered once per region) outside the measurement.
			await fx
				.realIssuer("acme-eu")
				.issue({ tenantId: "warm", regionId: EU, hostnames: [`warm.${ZONE}`] });
			// Failures (PowerDNS's SQLite backend answers 500 under concurrent writes) back off as
			// in production; later sweeps, after the backoff, retry them. Only sweep time counts.
			let renewed = 0;
			let failures = 0;
			let elapsed = 0;
			for (let sweep = 1; renewed < 1000 && sweep <= 10; sweep++) {
				let last = 0;
				const started = performance.now();
				const result = await renewDueCertificates(fx.platform, {
					holder: "bench",
					concurrency,
					onProgress: ({ done, total }) => {
						if (done - last >= 100 || done === total) {
							last = done;
							log(`  ${label} sweep ${sweep}: ${done}/${total}`);
						}
					},
				});
				elapsed += performance.now() - started;
				renewed += result.renewed;
				failures += result.failed;
				if (result.failed > 0)
					log(
						`  ${label}: ${result.failed} failed, e.g. ${result.outcomes.find((o) => o.error)?.error}`,
					);
				fx.clock.advance(7 * 60 * 60 * 1000);
			}
			const seconds = elapsed / 1000;
			out[label] = Math.round((renewed / seconds) * 10) / 10;
			out[`${label}_renewed`] = renewed;
			out[`${label}_failed_attempts`] = failures;
			log(
				`(b) ${label}: ${renewed} of 1000 renewed in ${seconds.toFixed(1)} s of sweeps = ${out[label]}/s (${failures} failed attempts retried)`,
			);
			fx.close();
		}
	} finally {
		await pebble.stop();
		await pdns.stop();
	}
	return out;
}

// ---------------------------------------------------------------- (c) probe cycle

async function probeCycle(count: number, concurrency: number): Promise<number[]> {
	const fx = await createJobsFixture({ clock: new FakeClock(Date.now()) });
	const listeners: Server[] = [];
	const now = new Date();
	const db = fx.platform.store.region(EU).db;
	const ports: number[] = [];
	for (let i = 0; i < count; i++) {
		const server = createServer((_req, res) => {
			res.writeHead(200);
			res.end("ok");
		});
		await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
		listeners.push(server);
		ports.push((server.address() as AddressInfo).port);
	}
	await db.transaction(async (tx) => {
		for (let i = 0; i < count; i++) {
			await tx.insert(nodes).values({
				id: `node_bench_${i}`,
				regionId: EU,
				name: `bench-${i}`,
				address: "127.0.0.1",
				healthUrl: `http://127.0.0.1:${ports[i]}/health`,
				state: "healthy",
				dnsAppliedState: "healthy",
				updatedAt: now,
			});
		}
	});
	const cycles: number[] = [];
	for (let round = 0; round < 4; round++) {
		const started = performance.now();
		const pass = await probeNodes(fx.platform, { holder: "bench", concurrency, regions: [EU] });
		if (pass.probed !== count || pass.failed !== 0)
			throw new Error(`probe cycle: ${pass.probed} probed, ${pass.failed} failed`);
		cycles.push(Math.round(performance.now() - started));
		fx.clock.advance(10_000);
	}
	for (const s of listeners) {
		s.closeAllConnections();
		s.close();
	}
	fx.close();
	return cycles;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
	// Parts to run: any of a, b, c (default all), e.g. `npm run bench:jobs -- a c`.
	const parts = new Set(process.argv.slice(2).length > 0 ? process.argv.slice(2) : ["a", "b", "c"]);
	const figures: Record<string, number> = {};
	if (parts.has("a")) {
		log("(a) failover through the Node edge");
		const a10 = await failoverThroughEdge(10_000, true);
		log(`(a) interval 10 s: ${JSON.stringify(a10)}`);
		const a1 = await failoverThroughEdge(1_000, true);
		log(`(a) interval 1 s: ${JSON.stringify(a1)}`);
		const probesOnly = await failoverThroughEdge(10_000, false);
		log(`(a) interval 10 s, probes only (no passive signal): ${JSON.stringify(probesOnly)}`);
		const probesOnly1 = await failoverThroughEdge(1_000, false);
		log(`(a) interval 1 s, probes only: ${JSON.stringify(probesOnly1)}`);
		const runs = [a10, a1, probesOnly, probesOnly1];
		Object.assign(figures, {
			failover_ms_interval_10s: a10.failoverMs,
			failover_ms_interval_1s: a1.failoverMs,
			failover_ms_interval_10s_probes_only: probesOnly.failoverMs,
			failover_ms_interval_1s_probes_only: probesOnly1.failoverMs,
			errors_during_failover: runs.reduce((n, r) => n + r.errors, 0),
			requests_during_failover: runs.reduce((n, r) => n + r.requestsInWindow, 0),
			residency_violations: runs.reduce((n, r) => n + r.residencyViolations, 0),
		});
	}
	if (parts.has("b")) {
		log("(b) renewal sweep over 1,000 due certificates");
		const b = await renewalSweep();
		Object.assign(figures, {
			renewals_per_s: b.pebble_c4,
			renewals_per_s_concurrency_16: b.pebble_c16,
			renewals_per_s_internal_ca: b.internal_ca_c4,
			renewal_failed_attempts: b.pebble_c4_failed_attempts,
			renewal_failed_attempts_concurrency_16: b.pebble_c16_failed_attempts,
			renewed_of_1000: b.pebble_c4_renewed,
			renewed_of_1000_concurrency_16: b.pebble_c16_renewed,
		});
	}
	if (parts.has("c")) {
		log("(c) probe cycle over 1,000 local listeners");
		const c32 = await probeCycle(1000, 32);
		log(`(c) concurrency 32: cycles ${c32.join(", ")} ms`);
		const c128 = await probeCycle(1000, 128);
		log(`(c) concurrency 128: cycles ${c128.join(", ")} ms`);
		Object.assign(figures, {
			probe_cycle_ms_1000_nodes: median(c32),
			probe_cycle_ms_1000_nodes_concurrency_128: median(c128),
		});
	}
	process.stdout.write(`${JSON.stringify(figures)}\n`);
}

await main();
process.exit(0);
