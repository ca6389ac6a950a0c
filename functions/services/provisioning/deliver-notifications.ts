import { and, asc, eq, isNull, lte, or } from "drizzle-orm";
import { outboundWebhooks } from "../../../db/schema/region";
import { SIGNATURE_HEADER, signPayload } from "../../webhooks/signature";
import type { Platform } from "../context";
import { backoffMs } from "./job-kinds";

/** After this many failed deliveries a notification is given up (and logged at error level). */
export const MAX_DELIVERY_ATTEMPTS = 15;

export interface DeliveryOptions {
	fetch?: typeof fetch;
	random?: () => number;
	timeoutMs?: number;
}

/**
 * Sends due notifications to their platform's `notifyUrl`, signed like incoming webhooks
 * (with the platform's first secret). A 2xx marks one delivered; anything else backs off.
 */
export async function deliverDueNotifications(
	platform: Platform,
	options: DeliveryOptions = {},
): Promise<{ delivered: number; failed: number }> {
	const send = options.fetch ?? fetch;
	const random = options.random ?? Math.random;
	let delivered = 0;
	let failed = 0;
	for (const region of platform.store.regions()) {
		const now = platform.clock.now();
		const due = await region.db
			.select()
			.from(outboundWebhooks)
			.where(
				and(
					isNull(outboundWebhooks.deliveredAt),
					lte(outboundWebhooks.attempts, MAX_DELIVERY_ATTEMPTS - 1),
					or(isNull(outboundWebhooks.nextAttemptAt), lte(outboundWebhooks.nextAttemptAt, now)),
				),
			)
			.orderBy(asc(outboundWebhooks.createdAt))
			.limit(100);
		for (const note of due) {
			const target = platform.config.webhooks.platforms.find((p) => p.id === note.platformId);
			const secret = platform.webhookSecrets.find((s) => s.owner === note.platformId)?.secret;
			let error: string | undefined;
			if (!target?.notifyUrl || !secret) {
				error = `platform ${note.platformId} has no notifyUrl or no resolved secret`;
			} else {
				const body = JSON.stringify({
					id: note.id,
					type: note.type,
					createdAt: note.createdAt.toISOString(),
					data: note.payload,
				});
				const signature = await signPayload(secret, body, Math.floor(now.getTime() / 1000));
				try {
					const res = await send(target.notifyUrl, {
						method: "POST",
						headers: { "content-type": "application/json", [SIGNATURE_HEADER]: signature },
						body,
						signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
					});
					if (!res.ok) error = `platform answered ${res.status}`;
					await res.body?.cancel();
				} catch (err) {
					error = err instanceof Error ? err.message : String(err);
				}
			}
			const attempts = note.attempts + 1;
			await region.db
				.update(outboundWebhooks)
				.set(
					error
						? {
								attempts,
								lastError: error,
								nextAttemptAt: new Date(now.getTime() + backoffMs(attempts, random)),
							}
						: { attempts, lastError: null, deliveredAt: now },
				)
				.where(eq(outboundWebhooks.id, note.id));
			if (error) {
				failed++;
				platform.logger.log(
					attempts >= MAX_DELIVERY_ATTEMPTS ? "error" : "warn",
					"platform notification not delivered",
					{
						notification: note.id,
						platform: note.platformId,
						attempts,
						error,
					},
				);
			} else delivered++;
		}
	}
	return { delivered, failed };
}
