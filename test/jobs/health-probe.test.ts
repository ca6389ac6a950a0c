import { createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createProber } from "../../functions/jobs/health-probe";
import { nodeTcpConnect } from "../../functions/node/scheduler-host";
import { freeTcpPort } from "../helpers/pdns-server";
import { type HealthOrigin, startHealthOrigin } from "./helpers/health-origins";

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
	for (const c of cleanup.splice(0)) await c();
});

async function origin(): Promise<HealthOrigin> {
	const o = await startHealthOrigin();
	cleanup.push(() => o.kill());
	return o;
}

/** Accepts TCP connections and never answers: a hung process. */
async function blackHole(): Promise<number> {
	const sockets: Socket[] = [];
	const server: Server = createServer((s) => sockets.push(s));
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	cleanup.push(async () => {
		for (const s of sockets) s.destroy();
		await new Promise<void>((resolve) => server.close(() => resolve()));
	});
	return (server.address() as { port: number }).port;
}

const target = (healthUrl: string | null, instanceUrls: string[] = []) => ({
	nodeId: "node_x",
	healthUrl,
	instanceUrls,
});

describe("HTTP health probe (real origins on 127.0.0.1)", () => {
	it("passes on 2xx and 3xx, fails on 5xx and 4xx, naming the status", async () => {
		const o = await origin();
		const probe = createProber({ timeoutMs: 1000 });
		for (const [status, ok] of [
			[200, true],
			[204, true],
			[302, true],
			[404, false],
			[503, false],
		] as const) {
			o.status = status;
			const result = await probe(target(o.healthUrl));
			expect(result.ok, String(status)).toBe(ok);
			if (!ok)
				expect(result).toEqual({ ok: false, error: `GET ${o.healthUrl} answered ${status}` });
		}
	});

	it("fails fast on a refused connection and within the timeout on a node that never answers", async () => {
		const probe = createProber({ timeoutMs: 300 });
		const refused = await probe(target(`http://127.0.0.1:${await freeTcpPort()}/health`));
		expect(refused).toMatchObject({ ok: false, error: expect.stringMatching(/ECONNREFUSED/) });

		const port = await blackHole();
		const started = performance.now();
		const hung = await probe(target(`http://127.0.0.1:${port}/health`));
		const took = performance.now() - started;
		expect(hung).toEqual({
			ok: false,
			error: `GET http://127.0.0.1:${port}/health: no answer within 300 ms`,
		});
		expect(took).toBeGreaterThanOrEqual(250);
		expect(took).toBeLessThan(2000);
	});
});

describe("TCP probe (nodes without a health URL)", () => {
	it("passes when any instance accepts, fails naming each one that does not", async () => {
		const o = await origin();
		const closed = await freeTcpPort();
		const probe = createProber({ timeoutMs: 500, tcpConnect: nodeTcpConnect });
		expect(
			await probe(target(null, [`http://127.0.0.1:${closed}`, `http://127.0.0.1:${o.port}`])),
		).toEqual({ ok: true });
		const down = await probe(target(null, [`http://127.0.0.1:${closed}`]));
		expect(down).toMatchObject({
			ok: false,
			error: expect.stringContaining(`tcp 127.0.0.1:${closed}: `),
		});
		expect(await probe(target(null, []))).toEqual({ ok: false, error: "node has no instances" });
	});

	it("is skipped, not failed, where the runtime has no TCP connect", async () => {
		const probe = createProber({ timeoutMs: 500 });
		expect(await probe(target(null, ["http://127.0.0.1:9"]))).toEqual({
			ok: "skipped",
			reason: "no health URL and no TCP connect in this runtime",
		});
	});
});
