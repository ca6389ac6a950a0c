/** Runtime parts injected into services and jobs, so tests can use a fake clock and ids. */
export interface Clock {
	now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

export type LogLevel = "debug" | "info" | "warn" | "error";

export interface Logger {
	log(level: LogLevel, message: string, fields?: Record<string, unknown>): void;
}

/** One JSON object per line. Callers never pass secrets; fields are data, not templates. */
export function jsonLogger(write: (line: string) => void, minLevel: LogLevel = "info"): Logger {
	const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
	return {
		log(level, message, fields) {
			if (rank[level] < rank[minLevel]) return;
			write(JSON.stringify({ at: new Date().toISOString(), level, message, ...fields }));
		},
	};
}

export const silentLogger: Logger = { log() {} };

/** Random ids with a readable prefix: `ten_3f9c...`. */
export function newId(prefix: string): string {
	const bytes = crypto.getRandomValues(new Uint8Array(12));
	let hex = "";
	for (const b of bytes) hex += b.toString(16).padStart(2, "0");
	return `${prefix}_${hex}`;
}
