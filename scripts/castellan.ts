import type { CommandIo } from "./lib/cli";
import { main } from "./main";

const io: CommandIo = {
	out: (line) => process.stdout.write(`${line}\n`),
	err: (line) => process.stderr.write(`${line}\n`),
	env: process.env,
	cwd: process.cwd(),
};
const code = await main(process.argv.slice(2), io);
process.exitCode = code;
