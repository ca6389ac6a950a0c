// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect polyfill first.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import type { RenewalWindow } from "../providers/types";

/**
 * ACME Renewal Information (RFC 9773), client side, runtime-neutral (fetch and @peculiar/x509
 * only). An ACME issuer implements `CertificateIssuer.renewalWindow` with `fetchRenewalWindow`.
 */

/** What fetchRenewalWindow needs to GET: global fetch, or one that trusts a private CA. */
export type AriFetch = (url: string, init: { signal: AbortSignal }) => Promise<Response>;

/** RFC 9773 §4.1: base64url(authorityKeyIdentifier) "." base64url(DER serial number value). */
export function ariCertId(leafPem: string): string {
	const [leafDer] = x509.PemConverter.decode(leafPem);
	if (!leafDer) throw new Error("no certificate in the PEM");
	const leaf = new x509.X509Certificate(leafDer);
	const aki = leaf.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId;
	if (!aki) throw new Error("the certificate has no authority key identifier: ARI cannot name it");
	let serial = hexBytes(leaf.serialNumber);
	while (serial.length > 1 && serial[0] === 0 && (serial[1]! & 0x80) === 0)
		serial = serial.slice(1);
	// DER encodes a positive INTEGER with a leading zero byte when its high bit is set.
	if ((serial[0]! & 0x80) !== 0) serial = Uint8Array.of(0, ...serial);
	return `${base64url(hexBytes(aki))}.${base64url(serial)}`;
}

export interface RenewalInfoRequest {
	/** The CA's ACME directory URL. */
	directoryUrl: string;
	/** The certificate, leaf first (PEM). */
	chainPem: string;
	now: Date;
	fetch?: AriFetch;
	timeoutMs?: number;
}

/**
 * The CA's suggested renewal window for a certificate, or undefined when the CA offers no ARI
 * (no `renewalInfo` in its directory) or does not know the certificate (404). Errors (CA down,
 * malformed answers) are thrown: the caller falls back to its own schedule and asks again later.
 */
export async function fetchRenewalWindow(
	request: RenewalInfoRequest,
): Promise<RenewalWindow | undefined> {
	const get = request.fetch ?? ((url, init) => fetch(url, init));
	const timeoutMs = request.timeoutMs ?? 10_000;
	const directory = await getJson(get, request.directoryUrl, timeoutMs);
	const base = (directory.body as { renewalInfo?: unknown } | undefined)?.renewalInfo;
	if (typeof base !== "string") return undefined;
	const url = `${base.replace(/\/+$/, "")}/${ariCertId(request.chainPem)}`;
	const answer = await getJson(get, url, timeoutMs);
	if (answer.status === 404) return undefined;
	if (answer.status !== 200) throw new Error(`GET ${url} answered ${answer.status}`);
	const body = answer.body as {
		suggestedWindow?: { start?: unknown; end?: unknown };
		explanationURL?: unknown;
	};
	const start = parseTime(body?.suggestedWindow?.start);
	const end = parseTime(body?.suggestedWindow?.end);
	// §4.2: a window whose end is not after its start is invalid; treat the answer as absent.
	if (!start || !end || end.getTime() <= start.getTime()) {
		throw new Error(`GET ${url}: no valid suggestedWindow in the answer`);
	}
	const retryAfter = parseRetryAfter(answer.retryAfter, request.now);
	return {
		start,
		end,
		...(retryAfter ? { retryAfter } : {}),
		...(typeof body.explanationURL === "string" ? { explanationUrl: body.explanationURL } : {}),
	};
}

async function getJson(
	get: AriFetch,
	url: string,
	timeoutMs: number,
): Promise<{ status: number; body: unknown; retryAfter: string | null }> {
	const response = await get(url, { signal: AbortSignal.timeout(timeoutMs) });
	const text = await response.text();
	let body: unknown;
	if (response.status === 200) {
		try {
			body = JSON.parse(text);
		} catch {
			throw new Error(`GET ${url}: the answer is not JSON`);
		}
	}
	return { status: response.status, body, retryAfter: response.headers.get("retry-after") };
}

function parseTime(value: unknown): Date | undefined {
	if (typeof value !== "string") return undefined;
	const ms = Date.parse(value);
	return Number.isNaN(ms) ? undefined : new Date(ms);
}

/** Retry-After is seconds or an HTTP date (RFC 9110 §10.2.3). */
function parseRetryAfter(value: string | null, now: Date): Date | undefined {
	if (!value) return undefined;
	if (/^\d+$/.test(value.trim())) return new Date(now.getTime() + Number(value.trim()) * 1000);
	const ms = Date.parse(value);
	return Number.isNaN(ms) ? undefined : new Date(ms);
}

function hexBytes(hex: string): Uint8Array {
	const clean = hex.replace(/[^0-9a-f]/gi, "");
	const even = clean.length % 2 === 1 ? `0${clean}` : clean;
	const out = new Uint8Array(even.length / 2);
	for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(even.slice(i * 2, i * 2 + 2), 16);
	return out;
}

function base64url(bytes: Uint8Array): string {
	let binary = "";
	for (const b of bytes) binary += String.fromCharCode(b);
	return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
