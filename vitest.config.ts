import { defineConfig } from "vitest/config";

export default defineConfig({
	test: {
		include: ["test/**/*.test.ts"],
		exclude: ["test/bench/**", "node_modules/**"],
		testTimeout: 30_000,
		hookTimeout: 60_000,
		// Integration suites start real servers; two cores, so keep the pool small.
		maxWorkers: 2,
	},
});
