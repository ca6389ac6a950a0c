// The one piece of `cloudflare:sockets` the functions worker uses (TCP health probes).
declare module "cloudflare:sockets" {
	export function connect(address: { hostname: string; port: number }): {
		opened: Promise<unknown>;
		close(): Promise<void>;
	};
}
