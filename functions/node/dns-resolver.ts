import { Resolver } from "node:dns/promises";
import type { DomainResolver } from "../services/context";

/**
 * Custom-domain verification through real DNS: the system resolvers, or the servers given
 * (`host:port`, e.g. a local PowerDNS in tests). A name that does not exist has no records.
 */
export function nodeDomainResolver(servers?: string[]): DomainResolver {
	const resolver = new Resolver({ timeout: 3000, tries: 2 });
	if (servers && servers.length > 0) resolver.setServers(servers);
	const none = (err: unknown): string[] => {
		const code = (err as NodeJS.ErrnoException).code;
		if (code === "ENOTFOUND" || code === "ENODATA") return [];
		throw err;
	};
	return {
		cname: (name) => resolver.resolveCname(name).catch(none),
		txt: (name) =>
			resolver
				.resolveTxt(name)
				.then((records) => records.map((chunks) => chunks.join("")))
				.catch(none),
	};
}
