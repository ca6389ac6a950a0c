import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DnsProviderError } from "../../functions/providers/dns/dns-provider-error";
import type { DnsProvider, DnsRecordSet, DnsRecordType } from "../../functions/providers/types";

export interface DnsConformanceSetup {
	provider: DnsProvider;
	/** A zone the provider serves and the suite may write to; every name it uses is under it. */
	zone: string;
	/** Required with `remote`: the same provider holding a credential its server refuses. */
	wrongCredential?: { provider: DnsProvider; credential: string };
	/** Required with `remote`: a provider configured for `zone`, which its server does not serve. */
	unservedZone?: { provider: DnsProvider; zone: string };
	/** Required with `remote`: the same provider pointed at an address where nothing listens. */
	unreachable?: DnsProvider;
	cleanup?: () => Promise<void>;
}

export interface DnsConformanceOptions {
	/**
	 * The provider talks to a server with a credential and configured zones (every provider but
	 * the in-memory noop): the suite then checks its errors on auth failure, on a zone the
	 * server does not serve, on a name outside its zones and on a server that does not answer.
	 */
	remote?: boolean;
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
	options: DnsConformanceOptions = {},
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

		if (options.remote) {
			describe("errors", () => {
				const sampleSet = (recordName: string): DnsRecordSet => ({
					name: recordName,
					type: "A",
					ttl: ttl(),
					values: ["192.0.2.20"],
				});

				it("auth failure: every call fails cleanly, not retryable, without the credential", async () => {
					const wrong = required(ctx.wrongCredential, "wrongCredential");
					const recordName = uniqueName("auth");
					const calls: Array<[string, () => Promise<unknown>]> = [
						["upsert", () => wrong.provider.upsert(sampleSet(recordName))],
						["remove", () => wrong.provider.remove(recordName, "A")],
						["list", () => wrong.provider.list(ctx.zone)],
					];
					for (const [call, run] of calls) {
						const err = await failure(run);
						expect(err, call).toBeInstanceOf(DnsProviderError);
						expect(err, call).toMatchObject({ code: "auth_failed", retryable: false });
						expect(err.message, call).toMatch(/authentication failed/i);
						expectNoSecret(err, wrong.credential);
					}
					expect(await recordSets(recordName)).toEqual([]);
				});

				it("a zone the server does not serve: a clean error naming the zone, not retryable", async () => {
					const unserved = required(ctx.unservedZone, "unservedZone");
					const calls: Array<[string, () => Promise<unknown>]> = [
						["upsert", () => unserved.provider.upsert(sampleSet(`www.${unserved.zone}`))],
						["list", () => unserved.provider.list(unserved.zone)],
					];
					for (const [call, run] of calls) {
						const err = await failure(run);
						expect(err, call).toBeInstanceOf(DnsProviderError);
						expect(err, call).toMatchObject({ code: "zone_not_served", retryable: false });
						expect(err.message, call).toContain(unserved.zone);
					}
				});

				it("a name outside every configured zone: refused before anything is sent", async () => {
					const outside = `www.outside-${crypto.randomUUID().slice(0, 8)}.invalid`;
					for (const run of [
						() => ctx.provider.upsert(sampleSet(outside)),
						() => ctx.provider.remove(outside, "A"),
					]) {
						const err = await failure(run);
						expect(err).toBeInstanceOf(DnsProviderError);
						expect(err).toMatchObject({ code: "outside_zones", retryable: false });
						expect(err.message).toContain(outside);
						expect(err.message).toContain(ctx.zone);
					}
				});

				it("a server that does not answer: a retryable error, so the job backs off", async () => {
					const unreachable = required(ctx.unreachable, "unreachable");
					for (const run of [
						() => unreachable.upsert(sampleSet(uniqueName("down"))),
						() => unreachable.list(ctx.zone),
					]) {
						const err = await failure(run);
						expect(err).toBeInstanceOf(DnsProviderError);
						expect(err).toMatchObject({ code: "unavailable", retryable: true });
					}
				});
			});
		}
	});
}

function required<T>(value: T | undefined, field: string): T {
	if (value === undefined) throw new Error(`the conformance setup must provide ${field}`);
	return value;
}

async function failure(run: () => Promise<unknown>): Promise<Error> {
	try {
		await run();
	} catch (err) {
		if (err instanceof Error) return err;
		throw new Error(`expected an Error, got ${String(err)}`);
	}
	throw new Error("expected the call to fail, but it succeeded");
}

/** The credential appears nowhere a log line could pick it up: message, stack, fields, causes. */
export function expectNoSecret(err: unknown, credential: string): void {
	for (let e: unknown = err; e instanceof Error; e = e.cause) {
		expect(e.message).not.toContain(credential);
		expect(String(e.stack)).not.toContain(credential);
		expect(JSON.stringify(e)).not.toContain(credential);
	}
}

function sorted(values: readonly string[] | undefined): string[] {
	return [...(values ?? [])].sort();
}

/** Providers may return a set's values in any order. */
function normalized(record: DnsRecordSet): DnsRecordSet {
	return { name: record.name, type: record.type, ttl: record.ttl, values: sorted(record.values) };
}
