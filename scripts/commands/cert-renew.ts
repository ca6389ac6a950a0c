import { hostname } from "node:os";
import {
	type RenewalOutcome,
	type RenewalScope,
	renewDueCertificates,
} from "../../functions/jobs/renew-due-certificates";
import { CliError, type CommandIo, parseFlags, withPlatform } from "../lib/cli";

const BAR_WIDTH = 30;

/**
 * `castellan cert renew [--due|--all|--tenant T] [--concurrency N]`: the renewal job by hand.
 * `--due` (the default) renews what the scheduler would; `--all` and `--tenant` renew now, due
 * or not. Takes the same per-certificate leases as the scheduler, so running it beside
 * `castellan start` never renews a certificate twice. Progress on stderr, one line per
 * certificate renewed or failed on stdout; exit 1 when any failed.
 */
export async function certRenew(args: string[], io: CommandIo): Promise<number> {
	const flags = parseFlags(args, {
		due: { type: "boolean" },
		all: { type: "boolean" },
		tenant: { type: "string" },
		concurrency: { type: "string" },
	});
	const chosen = [flags.due, flags.all, flags.tenant !== undefined].filter(Boolean).length;
	if (chosen > 1) throw new CliError(["give one of --due, --all, --tenant T"], 2);
	const concurrency = flags.concurrency === undefined ? 4 : Number(flags.concurrency);
	if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64)
		throw new CliError(["--concurrency: must be an integer from 1 to 64"], 2);
	const scope: RenewalScope = flags.all
		? { kind: "all" }
		: flags.tenant !== undefined
			? { kind: "tenant", tenantId: flags.tenant }
			: { kind: "due" };

	return withPlatform(flags.config, io, async (platform) => {
		if (scope.kind === "tenant" && !(await platform.store.locateTenant(scope.tenantId)))
			throw new CliError([`tenant "${scope.tenantId}" not found`]);
		const bar = progressBar(io);
		const result = await renewDueCertificates(platform, {
			// Its own holder: a CLI run never takes over a lease the scheduler holds.
			holder: `cli:${hostname()}:${process.pid}`,
			scope,
			concurrency,
			onProgress: ({ done, total, outcome }) => {
				const line = describe(outcome);
				if (line) bar.print(line);
				bar.update(done, total);
			},
		});
		const summary = `renewed ${result.renewed}, failed ${result.failed}, deferred ${result.deferred}, held by another runner ${result.busy}, checked ${result.outcomes.length}`;
		if (result.outcomes.length === 0)
			io.err(scope.kind === "due" ? "no certificate is due" : "no active certificate");
		else io.err(summary);
		if (result.alerts > 0)
			io.err(`ALERT: ${result.alerts} certificate(s) expire within 7 days and failed to renew`);
		return result.failed > 0 ? 1 : 0;
	});
}

function describe(o: RenewalOutcome): string | undefined {
	switch (o.result) {
		case "renewed":
			return `renewed\t${o.hostname}\t${o.certificateId} -> ${o.newCertificateId}\t${o.reason}`;
		case "failed":
			return `failed\t${o.hostname}\t${o.certificateId}\tretry after ${o.nextAttemptAt?.toISOString()}\t${o.error}`;
		case "deferred":
			return `deferred\t${o.hostname}\t${o.certificateId}\tasks the CA again at ${o.nextAttemptAt?.toISOString()}`;
		default:
			return undefined;
	}
}

/**
 * A bar on stderr: redrawn in place on a terminal, otherwise a line at every tenth (logs and
 * pipes get a readable trace instead of escape codes).
 */
function progressBar(io: CommandIo) {
	const tty = process.stderr.isTTY === true && !io.env.CI;
	let drawn = false;
	let lastTenth = -1;
	const render = (done: number, total: number) => {
		const filled = total === 0 ? BAR_WIDTH : Math.round((done / total) * BAR_WIDTH);
		const percent = total === 0 ? 100 : Math.floor((done / total) * 100);
		return `renewing [${"#".repeat(filled)}${".".repeat(BAR_WIDTH - filled)}] ${percent}% ${done}/${total}`;
	};
	return {
		/** A result line on stdout; the bar is drawn again below it. */
		print(line: string) {
			io.out(line);
			drawn = false;
		},
		update(done: number, total: number) {
			if (tty) {
				// Cursor up one line and clear it, so the bar redraws where it was.
				io.err(`${drawn ? "\x1b[1A\x1b[2K" : ""}${render(done, total)}`);
				drawn = true;
				return;
			}
			const tenth = Math.floor((done / total) * 10);
			if (tenth !== lastTenth || done === total) {
				lastTenth = tenth;
				io.err(render(done, total));
			}
		},
	};
}
