export * from "./api-tokens";
export * from "./hostnames";
export * from "./regions";
