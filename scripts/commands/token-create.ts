import { createApiToken } from "../../functions/services/api-tokens";
import { type CommandIo, parseFlags, withPlatform } from "../lib/cli";

/** `castellan token create --scope admin [--name N]`: prints the token once; only its hash is kept. */
export async function tokenCreate(args: string[], io: CommandIo): Promise<number> {
	const flags = parseFlags(args, {
		scope: { type: "string", multiple: true },
		name: { type: "string" },
	});
	return withPlatform(flags.config, io, async (platform) => {
		const created = await createApiToken(platform.store, platform.clock, {
			name: flags.name,
			scopes: flags.scope ?? [],
		});
		io.out(created.token);
		io.err(
			`token ${created.id} created with scopes ${created.scopes.join(", ")}; it is shown only once`,
		);
		return 0;
	});
}
