import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { defaultConfig } from "../../functions/config/default-config";
import { certRenew } from "../../scripts/commands/cert-renew";
import { CliError } from "../../scripts/lib/cli";
import { FakeClock } from "../helpers/fake-clock";
import {
	activeCertificates,
	addNode,
	addTenant,
	createJobsFixture,
	DAY_MS,
	EU,
	editConfig,
	type JobsFixture,
} from "./helpers/jobs-fixture";

let fx: JobsFixture | undefined;
afterEach(() => fx?.close());

/** Two tenants whose certificates are due by the real clock (issued 61 days ago), one that is not. */
async function fleet() {
	const clock = new FakeClock(Date.now() - 61 * DAY_MS);
	fx = await createJobsFixture({ clock });
	await addNode(fx.platform, { region: EU, name: "eu-a", address: "192.0.2.10" });
	await addTenant(fx.platform, { id: "ten_a", slug: "a", home: EU });
	await addTenant(fx.platform, { id: "ten_b", slug: "b", home: EU });
	clock.advance(60 * DAY_MS);
	await addTenant(fx.platform, { id: "ten_c", slug: "c", home: EU });
	const doc = defaultConfig(fx.t.dir);
	editConfig(doc, undefined);
	const config = join(fx.t.dir, "castellan.config.json");
	writeFileSync(config, JSON.stringify(doc));
	return { f: fx, config };
}

async function run(args: string[]) {
	const out: string[] = [];
	const err: string[] = [];
	const code = await certRenew(args, {
		out: (l) => out.push(l),
		err: (l) => err.push(l),
		env: { CI: "1" },
		cwd: fx!.t.dir,
	});
	return { code, out, err };
}

describe("castellan cert renew", () => {
	it("renews what is due (the default), with a progress bar on stderr and one line per certificate", async () => {
		const { f, config } = await fleet();
		const before = await activeCertificates(f.platform, EU, "ten_a");
		const r = await run(["--config", config]);
		expect(r.code).toBe(0);
		expect(r.out).toHaveLength(2);
		expect(r.out.map((l) => l.split("\t").slice(0, 2))).toEqual(
			expect.arrayContaining([
				["renewed", "a.localhost"],
				["renewed", "b.localhost"],
			]),
		);
		expect(r.out.find((l) => l.includes("a.localhost"))).toContain(`${before[0]!.id} -> crt_`);
		expect(r.err.at(-2)).toBe("renewing [##############################] 100% 2/2");
		expect(r.err.at(-1)).toBe(
			"renewed 2, failed 0, deferred 0, held by another runner 0, checked 2",
		);
		// The certificate that is not due was left alone.
		expect((await activeCertificates(f.platform, EU, "ten_c"))[0]?.renewAttempts).toBe(0);

		const again = await run(["--config", config, "--due"]);
		expect(again).toMatchObject({ code: 0, out: [], err: ["no certificate is due"] });
	});

	it("renews one tenant's certificates with --tenant, due or not, and all with --all", async () => {
		const { f, config } = await fleet();
		const c = await activeCertificates(f.platform, EU, "ten_c");
		const one = await run(["--config", config, "--tenant", "ten_c"]);
		expect(one.code).toBe(0);
		expect(one.out).toEqual([
			expect.stringMatching(
				new RegExp(`^renewed\\tc\\.localhost\\t${c[0]!.id} -> crt_\\w+\\tmanual:tenant$`),
			),
		]);
		const all = await run(["--config", config, "--all"]);
		expect(all.out).toHaveLength(3);
		expect(all.err.at(-1)).toMatch(/^renewed 3, failed 0/);
		// Progress on a pipe: a line per tenth, ending at 100 %.
		expect(all.err.filter((l) => l.startsWith("renewing ["))).toEqual([
			"renewing [##########....................] 33% 1/3",
			"renewing [####################..........] 66% 2/3",
			"renewing [##############################] 100% 3/3",
		]);
	});

	it("refuses contradictory or bad flags, and an unknown tenant", async () => {
		const { config } = await fleet();
		await expect(run(["--config", config, "--due", "--all"])).rejects.toMatchObject({
			lines: ["give one of --due, --all, --tenant T"],
			exitCode: 2,
		});
		await expect(run(["--config", config, "--concurrency", "0"])).rejects.toBeInstanceOf(CliError);
		await expect(run(["--config", config, "--tenant", "ten_nobody"])).rejects.toMatchObject({
			lines: ['tenant "ten_nobody" not found'],
		});
	});
});
