import type { Client, InStatement, Transaction, TransactionMode } from "@libsql/client/web";

/**
 * One writer at a time per embedded database, inside this process.
 *
 * The embedded libSQL driver runs each statement synchronously on a pooled connection. A write
 * that meets another connection's open write transaction waits for SQLite's busy timeout by
 * blocking the event loop, so that transaction (which needs the event loop to finish) never
 * can: both stall for the whole timeout and one fails with SQLITE_BUSY. Queuing every write
 * and write transaction here removes the deadlock for every caller (API, jobs, edge, CLI).
 * Reads are not queued: in WAL mode they never wait for a writer.
 */
export function serializeWrites(client: Client, options: { waitLimitMs?: number } = {}): Client {
	const waitLimitMs = options.waitLimitMs ?? 30_000;
	let tail: Promise<void> = Promise.resolve();

	/** Resolves with a release function once every earlier writer has released. */
	const acquire = (what: string): Promise<() => void> => {
		let release!: () => void;
		const mine = new Promise<void>((resolve) => {
			release = resolve;
		});
		const previous = tail;
		tail = previous.then(() => mine);
		let timer: ReturnType<typeof setTimeout> | undefined;
		const limit = new Promise<never>((_, reject) => {
			timer = setTimeout(
				() =>
					reject(
						new Error(
							`${what} waited over ${waitLimitMs} ms for another write on this database (a write on the database itself inside one of its own transactions?)`,
						),
					),
				waitLimitMs,
			);
		});
		return Promise.race([previous.then(() => release), limit]).then(
			(r) => {
				clearTimeout(timer);
				return r;
			},
			(err) => {
				// Give our turn up so writers queued behind us are not stuck too.
				previous.then(release);
				throw err;
			},
		);
	};

	const gated = async <T>(what: string, work: () => Promise<T>): Promise<T> => {
		const release = await acquire(what);
		try {
			return await work();
		} finally {
			release();
		}
	};

	const execute = ((stmt: InStatement | string, args?: unknown) => {
		const sql = typeof stmt === "string" ? stmt : stmt.sql;
		const run = () =>
			(client.execute as (s: unknown, a?: unknown) => ReturnType<Client["execute"]>)(stmt, args);
		return isRead(sql) ? run() : gated("a write", run);
	}) as Client["execute"];
	const transaction = (async (mode?: TransactionMode) => {
		if (mode === "read") return client.transaction(mode);
		const release = await acquire("a transaction");
		let tx: Transaction;
		try {
			tx = await client.transaction(mode);
		} catch (err) {
			release();
			throw err;
		}
		return releasingTransaction(tx, release);
	}) as Client["transaction"];
	// Plain delegation (not a prototype chain): the driver's classes use private fields.
	const wrapped: Client = {
		execute,
		transaction,
		batch: (stmts, mode) =>
			mode === "read"
				? client.batch(stmts, mode)
				: gated("a batch", () => client.batch(stmts, mode)),
		migrate: (stmts) => gated("a migration", () => client.migrate(stmts)),
		executeMultiple: (sql) => gated("a script", () => client.executeMultiple(sql)),
		sync: () => client.sync(),
		close: () => client.close(),
		reconnect: () => client.reconnect(),
		get closed() {
			return client.closed;
		},
		get protocol() {
			return client.protocol;
		},
	};
	return wrapped;
}

/** The transaction, releasing the write turn exactly once when it ends however it ends. */
function releasingTransaction(tx: Transaction, release: () => void): Transaction {
	let released = false;
	const done = () => {
		if (!released) {
			released = true;
			release();
		}
	};
	const wrapped: Transaction = {
		execute: (stmt) => tx.execute(stmt),
		batch: (stmts) => tx.batch(stmts),
		executeMultiple: (sql) => tx.executeMultiple(sql),
		commit: () => tx.commit().finally(done),
		rollback: () => tx.rollback().finally(done),
		close: () => {
			try {
				tx.close();
			} finally {
				done();
			}
		},
		get closed() {
			return tx.closed;
		},
	};
	return wrapped;
}

function isRead(sql: string): boolean {
	return /^\s*(select|explain)\b/i.test(sql);
}
