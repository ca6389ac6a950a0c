import { defineConfig } from "drizzle-kit";

export default defineConfig({
	dialect: "turso",
	schema: "./db/schema/region/index.ts",
	out: "./db/migrations/region",
	casing: "snake_case",
});
