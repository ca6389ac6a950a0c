import { parseArgs } from "node:util";
import { AppError } from "../functions/errors";
import { auditVerify } from "./commands/audit-verify";
import { certRenew } from "./commands/cert-renew";
import { configCheck } from "./commands/config-check";
import { keysRotate } from "./commands/keys-rotate";
import { migrateCommand } from "./commands/migrate";
import { nodeAdd } from "./commands/node-add";
import { start } from "./commands/start";
import { tenantCreate, tenantList } from "./commands/tenant";
import { tokenCreate } from "./commands/token-create";
import { CliError, type CommandIo } from "./lib/cli";

const USAGE = `castellan <command> [options]

Commands:
  start                         run the platform: control API, edge (HTTPS + HTTP), jobs
  migrate                       apply database migrations to the catalog and every region
  config check                  validate the configuration; one line per violation
  token create --scope S ...    create an API token (printed once); scopes: admin, tenants:write, read
  tenant create --slug S --region R [--profile P] [--allowed-regions a,b]
  tenant list
  node add --region R --name N --address IP --instance URL [--health-url URL]
                                register a data-plane node and its origins
  cert renew [--due|--all|--tenant T] [--concurrency N]
                                renew certificates now (progress on stderr)
  keys rotate [--generate] [--retire]
                                re-encrypt every stored secret to the current master key
  audit verify [--region R]     check every audit chain; exit 1 naming the first bad event

Options:
  --config FILE                 config file (default: $CASTELLAN_CONFIG, ./castellan.config.json|yaml, built-in)
  -h, --help                    show this help
`;

const COMMANDS: Record<string, (args: string[], io: CommandIo) => Promise<number>> = {
	start,
	migrate: migrateCommand,
	"config check": configCheck,
	"token create": tokenCreate,
	"tenant create": tenantCreate,
	"tenant list": tenantList,
	"node add": nodeAdd,
	"cert renew": certRenew,
	"keys rotate": keysRotate,
	"audit verify": auditVerify,
};

export async function main(argv: string[], io: CommandIo): Promise<number> {
	const { positionals } = parseArgs({ args: argv, strict: false, allowPositionals: true });
	const words = positionals.slice(0, 2);
	const name = COMMANDS[words.join(" ")] ? words.join(" ") : words[0];
	const command = name ? COMMANDS[name] : undefined;
	if (!name || !command || argv.includes("-h") || argv.includes("--help")) {
		io.out(USAGE);
		return command || argv.length === 0 || argv.includes("--help") ? 0 : 2;
	}
	const rest = [...argv];
	for (const word of name.split(" ")) rest.splice(rest.indexOf(word), 1);
	try {
		return await command(rest, io);
	} catch (err) {
		if (err instanceof CliError) {
			for (const line of err.lines) io.err(line);
			return err.exitCode;
		}
		if (err instanceof AppError && err.violations) {
			for (const v of err.violations) io.err(`${v.path}: ${v.rule}`);
			return 1;
		}
		io.err(`castellan ${name}: ${err instanceof Error ? err.message : String(err)}`);
		return 1;
	}
}
