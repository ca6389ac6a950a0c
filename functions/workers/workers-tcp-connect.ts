import { connect } from "cloudflare:sockets";
import type { TcpConnect } from "../jobs/health-probe";

/** TCP health probes on Workers: open a socket, wait until it is connected, close it. */
export const workersTcpConnect: TcpConnect = async (host, port, timeoutMs) => {
	const socket = connect({ hostname: host, port });
	let timer: ReturnType<typeof setTimeout> | undefined;
	try {
		await Promise.race([
			socket.opened,
			new Promise((_, reject) => {
				timer = setTimeout(
					() => reject(new Error(`TCP connect to ${host}:${port} timed out`)),
					timeoutMs,
				);
			}),
		]);
	} finally {
		clearTimeout(timer);
		await socket.close().catch(() => {});
	}
};
