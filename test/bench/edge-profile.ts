import { readFileSync } from "node:fs";
import { relative } from "node:path";

/** The parts of a V8 `.cpuprofile` this summary reads. */
interface CpuProfile {
	nodes: Array<{
		id: number;
		callFrame: { functionName: string; url: string; lineNumber: number };
		children?: number[];
	}>;
	samples: number[];
	timeDeltas: number[];
}

export interface HotSpot {
	frame: string;
	/** Share of all sampled time spent in this function itself. */
	selfPct: number;
	/** Share of sampled time with this function anywhere on the stack. */
	totalPct: number;
}

/**
 * Self and inclusive time per function (name + file + line), from the samples and their time
 * deltas. Inclusive time counts a frame once per sample even when it recurses.
 */
export function summariseProfile(
	file: string,
	root: string,
): { self: HotSpot[]; total: HotSpot[] } {
	const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
	const parent = new Map<number, number>();
	const frameOf = new Map<number, string>();
	for (const node of profile.nodes) {
		for (const child of node.children ?? []) parent.set(child, node.id);
		const { functionName, url, lineNumber } = node.callFrame;
		const where = url ? `${shorten(url, root)}:${lineNumber + 1}` : "";
		frameOf.set(node.id, `${functionName || "(anonymous)"}${where ? ` ${where}` : ""}`);
	}
	const self = new Map<string, number>();
	const total = new Map<string, number>();
	let all = 0;
	profile.samples.forEach((id, i) => {
		const dt = profile.timeDeltas[i] ?? 0;
		all += dt;
		const frame = frameOf.get(id) ?? "?";
		self.set(frame, (self.get(frame) ?? 0) + dt);
		const seen = new Set<string>();
		for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
			const f = frameOf.get(n) ?? "?";
			if (seen.has(f)) continue;
			seen.add(f);
			total.set(f, (total.get(f) ?? 0) + dt);
		}
	});
	const top = (m: Map<string, number>, exclude: (f: string) => boolean) =>
		[...m]
			.filter(([f]) => !exclude(f))
			.sort((a, b) => b[1] - a[1])
			.slice(0, 25)
			.map(([frame]) => ({
				frame,
				selfPct: round((100 * (self.get(frame) ?? 0)) / all),
				totalPct: round((100 * (total.get(frame) ?? 0)) / all),
			}));
	// The synthetic root and program frames cover everything: noise in an inclusive list.
	const synthetic = (f: string) => f.startsWith("(root)") || f.startsWith("(program)");
	return { self: top(self, () => false), total: top(total, synthetic) };
}

function shorten(url: string, root: string): string {
	const path = url.startsWith("file://") ? new URL(url).pathname : url;
	return path.startsWith(root) ? relative(root, path) : path;
}

function round(n: number): number {
	return Math.round(n * 10) / 10;
}
