import { z } from "zod";
import type { ProviderFactory } from "../registry";
import type { Capabilities, RelayProvider } from "../types";

/** The edge connects straight to the instance URL: edge and data plane share a network. */
export class DirectRelay implements RelayProvider {
	constructor(readonly capabilities: Capabilities) {}

	target(instanceUrl: string): string {
		return instanceUrl;
	}
}

export const directRelayFactory: ProviderFactory<"relay"> = {
	kind: "relay",
	type: "direct",
	settingsSchema: z.strictObject({}),
	endpointSettings: [],
	create: ({ capabilities }) => new DirectRelay(capabilities),
};
