import type { z } from "zod";

/** One broken rule, printed as `<path>: <rule>`; the path is a JSON path into the input. */
export interface Violation {
	path: string;
	rule: string;
}

export function formatViolation(v: Violation): string {
	return `${v.path}: ${v.rule}`;
}

export function jsonPath(segments: ReadonlyArray<PropertyKey>, root = "$"): string {
	let out = root;
	for (const s of segments) {
		if (typeof s === "number") out += `[${s}]`;
		else if (typeof s === "string" && /^[A-Za-z_][A-Za-z0-9_]*$/.test(s)) out += `.${s}`;
		else out += `[${JSON.stringify(String(s))}]`;
	}
	return out;
}

/** zod issues as violations, with "received undefined" said plainly as "is required". */
export function zodViolations(
	error: z.ZodError,
	prefix: ReadonlyArray<PropertyKey> = [],
	root = "$",
): Violation[] {
	return error.issues.map((issue) => {
		let rule = issue.message;
		if (issue.code === "invalid_type" && /received undefined$/.test(issue.message)) {
			rule = `is required (${issue.expected})`;
		} else if (issue.code === "unrecognized_keys") {
			rule = `unknown field${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")}`;
		}
		return { path: jsonPath([...prefix, ...issue.path], root), rule };
	});
}
