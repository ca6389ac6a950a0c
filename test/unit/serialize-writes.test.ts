import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openLibsql } from "../../db/client";

let dir: string;
beforeEach(() => {
	dir = mkdtempSync(join(tmpdir(), "castellan-writes-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function open() {
	const client = await openLibsql(createClient, {
		label: "test",
		url: `file:${join(dir, "t.db")}`,
	});
	await client.execute("create table t (id integer primary key, who text not null)");
	return client;
}

describe("embedded databases take one writer at a time", () => {
	it("lets a plain write wait for an open transaction instead of deadlocking the event loop", async () => {
		const client = await open();
		const order: string[] = [];
		const tx = await client.transaction("write");
		await tx.execute("insert into t (who) values ('transaction')");
		// Issued while the transaction is open: it must wait, not busy-wait and fail with SQLITE_BUSY.
		const outside = client
			.execute("insert into t (who) values ('outside')")
			.then(() => order.push("outside"));
		await new Promise((resolve) => setImmediate(resolve));
		await tx.execute("insert into t (who) values ('transaction, later')");
		await tx.commit();
		order.push("committed");
		await outside;
		expect(order).toEqual(["committed", "outside"]);
		const rows = await client.execute("select who from t order by id");
		expect(rows.rows.map((r) => r.who)).toEqual(["transaction", "transaction, later", "outside"]);
		client.close();
	});

	it("does not hold reads behind a writer, and a rolled-back transaction releases its turn", async () => {
		const client = await open();
		const tx = await client.transaction("write");
		await tx.execute("insert into t (who) values ('rolled back')");
		const read = await client.execute("select count(*) as n from t");
		expect(Number(read.rows[0]?.n)).toBe(0);
		await tx.rollback();
		await client.execute("insert into t (who) values ('after')");
		const rows = await client.execute("select who from t");
		expect(rows.rows.map((r) => r.who)).toEqual(["after"]);
		client.close();
	});

	it("names the likely cause when a write waits too long", async () => {
		const { serializeWrites } = await import("../../db/serialize-writes");
		const raw = createClient({ url: `file:${join(dir, "u.db")}` });
		const client = serializeWrites(raw, { waitLimitMs: 50 });
		const tx = await client.transaction("write");
		await expect(client.execute("create table u (x)")).rejects.toThrow(
			/a write waited over 50 ms for another write on this database \(a write on the database itself inside one of its own transactions\?\)/,
		);
		await tx.rollback();
		await client.execute("create table u (x)");
		raw.close();
	});
});
