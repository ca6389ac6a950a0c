import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultConfig } from "../../functions/config/default-config";
import { main } from "../../scripts/main";

let dir: string;

beforeAll(() => {
	dir = mkdtempSync(join(tmpdir(), "castellan-cli-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `castellan <argv>` in-process against the built-in default rooted in the temp dir. */
async function castellan(argv: string[], env: Record<string, string> = {}) {
	const out: string[] = [];
	const err: string[] = [];
	const code = await main(argv, {
		out: (l) => out.push(l),
		err: (l) => err.push(l),
		env: { CASTELLAN_DATA_DIR: join(dir, "data"), ...env },
		cwd: dir,
	});
	return { code, out, err };
}

function writeConfig(name: string, edit: (doc: ReturnType<typeof defaultConfig>) => void): string {
	const doc = defaultConfig(join(dir, "data"));
	edit(doc);
	const path = join(dir, name);
	writeFileSync(path, JSON.stringify(doc));
	return path;
}

const BAD_LINES = [
	"$.regions[1].database.url: unsupported database URL (use file:PATH, :memory:, libsql://HOST, http(s)://HOST or ws(s)://HOST)",
	'$.profiles.standard.providers.dns: unknown provider "cloudflare-main"',
];

function badConfig(): string {
	return writeConfig("bad.json", (doc) => {
		doc.regions[1]!.database.url = "mysql://db/us";
		doc.profiles.standard!.providers!.dns = "cloudflare-main";
	});
}

describe("castellan config check / start refusal", () => {
	it("exits 0 on the built-in default", async () => {
		const r = await castellan(["config", "check"]);
		expect(r.code).toBe(0);
		expect(r.out[0]).toMatch(/^config ok \(built-in default\): 2 regions, 4 providers/);
	});

	it("exits 1 on an invalid file with one line per violation", async () => {
		const r = await castellan(["config", "check", "--config", badConfig()]);
		expect(r.code).toBe(1);
		expect(r.err).toEqual(BAD_LINES);
	});

	it("reads the file from CASTELLAN_CONFIG too, and YAML as well as JSON", async () => {
		const yamlPath = join(dir, "castellan.config.yaml");
		writeFileSync(yamlPath, "baseDomain: example.net\nregions: []\nprofiles: {}\n");
		const r = await castellan(["config", "check"], { CASTELLAN_CONFIG: yamlPath });
		expect(r.code).toBe(1);
		expect(r.err).toEqual(["$.regions: at least one region is required"]);
		rmSync(yamlPath);
	});

	it("reports a file that is not valid JSON as such", async () => {
		const path = join(dir, "broken.json");
		writeFileSync(path, "{ regions: ");
		const r = await castellan(["config", "check", "--config", path]);
		expect(r.code).toBe(1);
		expect(r.err[0]).toMatch(/^config file .*broken\.json is not valid JSON/);
	});

	it("applies environment overrides before validation, so a bad override is named like a bad field", async () => {
		const r = await castellan(["config", "check"], { CASTELLAN_API_PORT: "http" });
		expect(r.code).toBe(1);
		expect(r.err).toEqual(["$.ports.api: Invalid input: expected number, received string"]);
	});

	it("start refuses the same config with the same lines and opens nothing", async () => {
		const r = await castellan(["start", "--config", badConfig()]);
		expect(r.code).toBe(1);
		expect(r.err).toEqual(BAD_LINES);
	});
});

describe("castellan against the embedded default", () => {
	it("migrates, then creates a token printed once and stored hashed", async () => {
		expect((await castellan(["migrate"])).code).toBe(0);
		const r = await castellan(["token", "create", "--scope", "admin", "--name", "ops"]);
		expect(r.code).toBe(0);
		const token = r.out[0]!;
		expect(token).toMatch(/^cst_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
		expect(
			readFileSync(join(dir, "data", "catalog.db")).includes(Buffer.from(token.split("_")[2]!)),
		).toBe(false);
		const bad = await castellan(["token", "create", "--scope", "superuser"]);
		expect(bad.code).toBe(1);
		expect(bad.err[0]).toMatch(
			/^\$\.scopes\[0\]: Invalid option: expected one of "admin"\|"tenants:write"\|"read"/,
		);
	});

	it("created the master key file with mode 0600 on first start", () => {
		expect(statSync(join(dir, "data", "master.key")).mode & 0o777).toBe(0o600);
	});

	it("registers a data-plane node, refusing a bad address with the field named", async () => {
		const bad = await castellan([
			"node",
			"add",
			"--region",
			"eu-central",
			"--name",
			"eu-1",
			"--address",
			"not-an-ip",
			"--instance",
			"http://127.0.0.1:9",
		]);
		expect(bad.code).toBe(1);
		expect(bad.err).toEqual(["$.address: Invalid input"]);
		const r = await castellan([
			"node",
			"add",
			"--region",
			"eu-central",
			"--name",
			"eu-1",
			"--address",
			"192.0.2.10",
			"--instance",
			"http://127.0.0.1:9",
		]);
		expect(r.code).toBe(0);
		expect(r.out[0]).toMatch(/^node_[0-9a-f]{24}$/);
	});

	it("creates and provisions a tenant, and audit verify passes", async () => {
		const r = await castellan([
			"tenant",
			"create",
			"--slug",
			"acme",
			"--region",
			"eu-central",
			"--id",
			"ten_acme",
		]);
		expect(r.code).toBe(0);
		expect(JSON.parse(r.out[0]!)).toMatchObject({
			id: "ten_acme",
			status: "active",
			hostnames: ["acme.localhost"],
		});
		const v = await castellan(["audit", "verify"]);
		expect(v.code).toBe(0);
		expect(v.out).toEqual([
			expect.stringMatching(/^eu-central: audit chains intact: 2 chains, \d+ events$/),
			expect.stringMatching(/^us-east: audit chains intact: 1 chains, 1 events$/),
		]);
	});

	it("refuses a sovereign tenant across jurisdictions with the violation line, writing nothing", async () => {
		const r = await castellan([
			"tenant",
			"create",
			"--slug",
			"spill",
			"--region",
			"eu-central",
			"--profile",
			"sovereign",
			"--allowed-regions",
			"eu-central,us-east",
		]);
		expect(r.code).toBe(1);
		expect(r.err).toEqual([
			"$.allowedRegions[1]: sovereign tenant homed in eu-central (jurisdiction EU) may not be served from us-east (jurisdiction US)",
		]);
		const list = await castellan(["tenant", "list"]);
		expect(list.out.join("\n")).not.toContain("spill");
	});

	it("rotates the master key: secrets re-encrypted, old key retired, everything still opens", async () => {
		const keyFile = join(dir, "data", "master.key");
		const before = readFileSync(keyFile, "utf8").trim();
		const r = await castellan(["keys", "rotate", "--generate", "--retire"]);
		expect(r.code).toBe(0);
		expect(r.out.join("\n")).toMatch(/eu-central: [1-9]\d* re-encrypted, 0 already current/);
		const after = readFileSync(keyFile, "utf8").trim();
		expect(after).not.toBe(before);
		const keyLines = (text: string) =>
			text.split("\n").filter((l) => l.trim() && !l.startsWith("#"));
		expect(keyLines(after)).toHaveLength(1);
		expect(keyLines(before)).toHaveLength(1);
		expect(keyLines(after)[0]).not.toBe(keyLines(before)[0]);
		expect(statSync(keyFile).mode & 0o777).toBe(0o600);
		// The platform opens with the new key alone (the start proves it by opening a stored secret).
		expect((await castellan(["tenant", "list"])).code).toBe(0);
		expect((await castellan(["audit", "verify"])).code).toBe(0);

		// With the retired key back in place, the start says it is the wrong key.
		writeFileSync(keyFile, `${before}\n`, { mode: 0o600 });
		const wrong = await castellan(["tenant", "list"]);
		expect(wrong.code).toBe(1);
		expect(wrong.err[0]).toMatch(/which is not in the configured keyring .*wrong master key\?/);
		expect(wrong.err.join("\n")).not.toContain(keyLines(before)[0]);
		writeFileSync(keyFile, `${after}\n`, { mode: 0o600 });
	});

	it("audit verify exits 1 naming the first edited event", async () => {
		const client = createClient({ url: `file:${join(dir, "data", "eu-central.db")}` });
		const [row] = (
			await client.execute(
				"select seq, id from audit_events where chain = 'ten_acme' order by seq limit 1 offset 1",
			)
		).rows;
		await client.execute({
			sql: "update audit_events set data = '{\"forged\":true}' where id = ?",
			args: [row!.id as string],
		});
		client.close();
		const v = await castellan(["audit", "verify", "--region", "eu-central"]);
		expect(v.code).toBe(1);
		expect(v.err[0]).toContain(`chain ten_acme: event ${row!.seq} (${row!.id})`);
		expect(v.err[0]).toMatch(/edited/);
	});

	it("names the region and the redacted URL of a database it cannot open", async () => {
		const path = writeConfig("remote.json", (doc) => {
			doc.regions[1]!.database = {
				url: "http://admin:hunter2@127.0.0.1:9/db?authToken=s3cr3t",
				authToken: "tok-s3cr3t",
			};
		});
		const r = await castellan(["tenant", "list", "--config", path]);
		expect(r.code).toBe(1);
		expect(r.err[0]).toMatch(
			/^cannot open the region us-east database at http:\/\/127\.0\.0\.1:9\/db: /,
		);
		expect(r.err.join("\n")).not.toMatch(/hunter2|s3cr3t/);
	});
});
