import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DnsProvider, DnsRecordSet, DnsRecordType } from "../../functions/providers/types";

export interface DnsConformanceSetup {
	provider: DnsProvider;
	/** A zone the provider serves and the suite may write to; every name it uses is under it. */
	zone: string;
	cleanup?: () => Promise<void>;
}

const ALL_TYPES: readonly DnsRecordType[] = ["A", "AAAA", "CNAME", "TXT"];

/**
 * The behaviour every DNS provider owes its callers (provisioning, failover, DNS-01), run
 * against the real thing. Each test writes under its own random name, so one setup serves all.
 * A records are assumed everywhere: failover cannot work without them.
 */
export function dnsProviderConformance(
	name: string,
	setup: () => Promise<DnsConformanceSetup>,
): void {
	describe(`DNS provider conformance: ${name}`, () => {
		let ctx: DnsConformanceSetup;

		beforeAll(async () => {
			ctx = await setup();
		});
		afterAll(async () => {
			await ctx?.cleanup?.();
		});

		const uniqueName = (label: string) => `${label}-${crypto.randomUUID().slice(0, 8)}.${ctx.zone}`;
		/** A TTL the provider accepts as is, offset so two TTLs in one test differ. */
		const ttl = (offset = 0) => Math.max(ctx.provider.capabilities.minTtl, 300) + offset;

		async function recordSets(recordName: string, type?: DnsRecordType): Promise<DnsRecordSet[]> {
			const listed = await ctx.provider.list(ctx.zone);
			return listed.filter((r) => r.name === recordName && (type === undefined || r.type === type));
		}

		function sample(type: DnsRecordType): string[] {
			switch (type) {
				case "A":
					return ["192.0.2.10", "192.0.2.11"];
				case "AAAA":
					return ["2001:db8::10"];
				case "CNAME":
					return [`target-${crypto.randomUUID().slice(0, 8)}.${ctx.zone}`];
				case "TXT":
					return [`castellan conformance ${crypto.randomUUID()}`];
			}
		}

		describe("upsert and list", () => {
			it("lists a record set after it is upserted, under the zone", async () => {
				const record = {
					name: uniqueName("www"),
					type: "A" as const,
					ttl: ttl(),
					values: ["192.0.2.1"],
				};
				await ctx.provider.upsert(record);

				expect((await recordSets(record.name)).map(normalized)).toEqual([record]);
			});

			it("is idempotent: the same upsert twice leaves one record set", async () => {
				const record = {
					name: uniqueName("twice"),
					type: "A" as const,
					ttl: ttl(),
					values: ["192.0.2.2", "192.0.2.3"],
				};
				await ctx.provider.upsert(record);
				await ctx.provider.upsert({ ...record, values: [...record.values] });

				const sets = await recordSets(record.name);
				expect(sets).toHaveLength(1);
				expect(sorted(sets[0]?.values)).toEqual(sorted(record.values));
			});

			it("replaces the whole set: new values and TTL, none of the old values left", async () => {
				const recordName = uniqueName("replace");
				await ctx.provider.upsert({
					name: recordName,
					type: "A",
					ttl: ttl(),
					values: ["192.0.2.4"],
				});
				await ctx.provider.upsert({
					name: recordName,
					type: "A",
					ttl: ttl(60),
					values: ["192.0.2.5", "192.0.2.6"],
				});

				const sets = await recordSets(recordName);
				expect(sets).toHaveLength(1);
				expect(sets[0]?.ttl).toBe(ttl(60));
				expect(sorted(sets[0]?.values)).toEqual(["192.0.2.5", "192.0.2.6"]);
			});
		});

		describe("remove", () => {
			it("deletes the set of the given type, and only that type at that name", async () => {
				const recordName = uniqueName("remove");
				await ctx.provider.upsert({
					name: recordName,
					type: "A",
					ttl: ttl(),
					values: ["192.0.2.7"],
				});
				// A neighbour of another type (not CNAME: it cannot share a name with anything).
				const otherType = (["TXT", "AAAA"] as const).find((t) =>
					ctx.provider.capabilities.recordTypes.includes(t),
				);
				const neighbour = otherType && {
					name: recordName,
					type: otherType,
					ttl: ttl(),
					values: sample(otherType),
				};
				if (neighbour) await ctx.provider.upsert(neighbour);

				await ctx.provider.remove(recordName, "A");

				expect(await recordSets(recordName, "A")).toEqual([]);
				expect((await recordSets(recordName)).map(normalized)).toEqual(
					neighbour ? [normalized(neighbour)] : [],
				);
			});

			it("accepts removing a set that is already gone or never existed", async () => {
				const recordName = uniqueName("absent");
				await ctx.provider.upsert({
					name: recordName,
					type: "A",
					ttl: ttl(),
					values: ["192.0.2.8"],
				});
				await ctx.provider.remove(recordName, "A");

				await expect(ctx.provider.remove(recordName, "A")).resolves.toBeUndefined();
				await expect(ctx.provider.remove(uniqueName("never"), "TXT")).resolves.toBeUndefined();
				expect(await recordSets(recordName)).toEqual([]);
			});
		});

		describe("record types", () => {
			for (const type of ALL_TYPES) {
				it(`${type}: round-trips when declared in capabilities.recordTypes, is refused otherwise`, async () => {
					const record = {
						name: uniqueName(type.toLowerCase()),
						type,
						ttl: ttl(),
						values: sample(type),
					};
					if (!ctx.provider.capabilities.recordTypes.includes(type)) {
						// A provider must not accept what it says it cannot serve.
						await expect(ctx.provider.upsert(record)).rejects.toThrow();
						expect(await recordSets(record.name)).toEqual([]);
						return;
					}
					await ctx.provider.upsert(record);
					expect((await recordSets(record.name)).map(normalized)).toEqual([normalized(record)]);
				});
			}
		});

		describe("minimum TTL", () => {
			it("raises a TTL below capabilities.minTtl to minTtl instead of storing it", async () => {
				const { minTtl } = ctx.provider.capabilities;
				const asked = Math.max(minTtl - 1, 0);
				const record = {
					name: uniqueName("ttl"),
					type: "A" as const,
					ttl: asked,
					values: ["192.0.2.9"],
				};
				await ctx.provider.upsert(record);

				const sets = await recordSets(record.name);
				expect(sets).toHaveLength(1);
				// With minTtl 0 nothing is below the floor and the TTL must come back unchanged.
				expect(sets[0]?.ttl).toBe(Math.max(asked, minTtl));
			});
		});
	});
}

function sorted(values: readonly string[] | undefined): string[] {
	return [...(values ?? [])].sort();
}

/** Providers may return a set's values in any order. */
function normalized(record: DnsRecordSet): DnsRecordSet {
	return { name: record.name, type: record.type, ttl: record.ttl, values: sorted(record.values) };
}
