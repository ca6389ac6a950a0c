import { defineConfig } from "drizzle-kit";

export default defineConfig({
	dialect: "turso",
	schema: "./db/schema/catalog/index.ts",
	out: "./db/migrations/catalog",
	casing: "snake_case",
});
