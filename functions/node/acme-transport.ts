import { AsyncLocalStorage } from "node:async_hooks";
import * as http from "node:http";
import * as https from "node:https";
import type { Duplex } from "node:stream";
import * as acme from "acme-client";
import { IssuerError } from "../providers/issuers/issuer-error";

/**
 * How one ACME issuer talks to its CA. acme-client sends every request through one shared axios
 * instance; the interceptors installed here apply the settings of the issuer whose call is
 * running (found through AsyncLocalStorage), so issuers with different trust never mix.
 */
export interface CaTransport {
	/** Roots to trust for the CA's HTTPS (a private CA such as Pebble); the system's when absent. */
	trustedRootsPem?: string;
	requestTimeoutMs: number;
}

interface AcmeProblem {
	type: string;
	detail: string;
	identifiers: string[];
}

/** What happened to the last request of one issuer call, to explain a failure afterwards. */
export class RequestTrace {
	url: string | undefined;
	status: number | undefined;
	problem: AcmeProblem | undefined;
	networkError: (Error & { code?: string }) | undefined;

	started(url: string): void {
		this.url = url;
		this.status = undefined;
		this.problem = undefined;
		this.networkError = undefined;
	}
}

interface CallContext {
	httpsAgent: https.Agent;
	httpAgent: http.Agent;
	timeoutMs: number;
	trace: RequestTrace;
}

const calls = new AsyncLocalStorage<CallContext>();
let installed = false;

/**
 * acme-client retries network errors and 5xx answers itself, sleeping 5 s, 10 s, ... between
 * attempts with no way to inject the wait; an issuer makes one attempt per request instead and
 * reports a retryable IssuerError, so the job's backoff (persisted, injectable) decides.
 */
const NO_CLIENT_RETRIES = Number.MAX_SAFE_INTEGER;
/** A bundle of roots is a few kilobytes; anything this big is not one. */
const MAX_TEXT_BYTES = 1024 * 1024;

function installInterceptors(): void {
	if (installed) return;
	installed = true;
	acme.axios.interceptors.request.use((config) => {
		const call = calls.getStore();
		if (!call) return config;
		call.trace.started(String(config.url ?? ""));
		config.httpsAgent = call.httpsAgent;
		config.httpAgent = call.httpAgent;
		config.timeout = call.timeoutMs;
		const retry = config as unknown as { retryAttempt?: number };
		retry.retryAttempt = NO_CLIENT_RETRIES;
		return config;
	});
	acme.axios.interceptors.response.use((response) => {
		const call = calls.getStore();
		if (call) {
			call.trace.status = response.status;
			call.trace.problem = problemOf(response.data);
		}
		return response;
	});
}

/** The trace of the issuer call running now, if any. */
export function currentTrace(): RequestTrace | undefined {
	return calls.getStore()?.trace;
}

/** Runs `fn` with the transport's trust and timeouts applied to every request acme-client makes. */
export class CaConnection {
	readonly #httpsAgent: https.Agent;
	readonly #httpAgent: http.Agent;
	readonly #timeoutMs: number;

	constructor(transport: CaTransport) {
		installInterceptors();
		this.#timeoutMs = transport.requestTimeoutMs;
		this.#httpsAgent = new TracingHttpsAgent(
			transport.trustedRootsPem ? { ca: transport.trustedRootsPem } : {},
		);
		this.#httpAgent = new TracingHttpAgent();
	}

	run<T>(fn: (trace: RequestTrace) => Promise<T>): Promise<T> {
		const trace = new RequestTrace();
		const context: CallContext = {
			httpsAgent: this.#httpsAgent,
			httpAgent: this.#httpAgent,
			timeoutMs: this.#timeoutMs,
			trace,
		};
		return calls.run(context, () => fn(trace));
	}

	/** A GET outside acme-client (the CA's roots), with the same trust, timeout and error mapping. */
	getText(url: string): Promise<string> {
		return this.run(async (trace) => {
			try {
				return await this.#get(url, trace);
			} catch (err) {
				throw explainCaFailure(err, trace, this.#timeoutMs, []);
			}
		});
	}

	#get(url: string, trace: RequestTrace): Promise<string> {
		trace.started(url);
		const target = new URL(url);
		const secure = target.protocol === "https:";
		const agent = secure ? this.#httpsAgent : this.#httpAgent;
		return new Promise<string>((resolve, reject) => {
			const request = (secure ? https : http).get(target, { agent }, (response) => {
				trace.status = response.statusCode;
				let body = "";
				response.setEncoding("utf8");
				response.on("data", (chunk: string) => {
					body += chunk;
					if (body.length > MAX_TEXT_BYTES) {
						request.destroy(new Error(`GET ${url}: the answer exceeds ${MAX_TEXT_BYTES} bytes`));
					}
				});
				response.on("end", () => {
					const status = response.statusCode ?? 0;
					if (status >= 200 && status < 300) resolve(body);
					else reject(new Error(`GET ${url} answered ${status}`));
				});
				response.on("error", reject);
			});
			request.setTimeout(this.#timeoutMs, () => request.destroy(new Error("timeout")));
			request.on("error", reject);
		});
	}

	close(): void {
		this.#httpsAgent.destroy();
		this.#httpAgent.destroy();
	}
}

// Socket errors (refused, reset, untrusted TLS certificate) are recorded on the call that opened
// the socket: acme-client replaces them with a TypeError when it does not retry.
class TracingHttpsAgent extends https.Agent {
	override createConnection(
		options: https.RequestOptions,
		callback?: (err: Error | null, stream: Duplex) => void,
	): Duplex | null | undefined {
		return traced(super.createConnection(options, callback));
	}
}

class TracingHttpAgent extends http.Agent {
	override createConnection(
		options: http.ClientRequestArgs,
		callback?: (err: Error | null, stream: Duplex) => void,
	): Duplex | null | undefined {
		return traced(super.createConnection(options, callback));
	}
}

function traced(socket: Duplex | null | undefined): Duplex | null | undefined {
	const trace = calls.getStore()?.trace;
	if (socket && trace) {
		socket.once("error", (err: Error & { code?: string }) => {
			trace.networkError = err;
		});
	}
	return socket;
}

const ACME_ERROR = "urn:ietf:params:acme:error:";

function problemOf(data: unknown): AcmeProblem | undefined {
	if (typeof data !== "object" || data === null) return undefined;
	const { type, detail, subproblems } = data as {
		type?: unknown;
		detail?: unknown;
		subproblems?: unknown;
	};
	if (typeof type !== "string" || !type.startsWith(ACME_ERROR)) return undefined;
	const identifiers = Array.isArray(subproblems)
		? subproblems
				.map((s) => (s as { identifier?: { value?: unknown } })?.identifier?.value)
				.filter((v): v is string => typeof v === "string")
		: [];
	return {
		type: type.slice(ACME_ERROR.length),
		detail: typeof detail === "string" ? detail : "",
		identifiers,
	};
}

/** Problems a person must fix (configuration, the names, the account): retrying cannot help. */
const REFUSALS = new Set([
	"accountDoesNotExist",
	"alreadyRevoked",
	"badCSR",
	"badPublicKey",
	"badRevocationReason",
	"badSignatureAlgorithm",
	"caa",
	"externalAccountRequired",
	"invalidContact",
	"malformed",
	"orderNotReady",
	"rejectedIdentifier",
	"unauthorized",
	"unsupportedContact",
	"unsupportedIdentifier",
	"userActionRequired",
]);

/** Problems about one of the requested names rather than the account or the request. */
const IDENTIFIER_PROBLEMS = new Set(["caa", "rejectedIdentifier", "unsupportedIdentifier"]);

/** What refusals say first, so the message reads as a reason rather than a code. */
const REFUSAL_HINTS: Record<string, string> = {
	externalAccountRequired:
		"the CA requires External Account Binding: set settings.eab (kid and hmacKey from the CA)",
	rejectedIdentifier: "the CA refused to issue for",
	unsupportedIdentifier: "the CA does not issue for",
	caa: "a CAA record forbids this CA to issue for",
};

/** Node's codes for a TLS certificate the client does not trust. */
const TLS_TRUST_CODES = new Set([
	"SELF_SIGNED_CERT_IN_CHAIN",
	"DEPTH_ZERO_SELF_SIGNED_CERT",
	"UNABLE_TO_VERIFY_LEAF_SIGNATURE",
	"UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
	"CERT_UNTRUSTED",
	"ERR_TLS_CERT_ALTNAME_INVALID",
]);

/**
 * Turns whatever acme-client threw into an IssuerError, from what the trace saw on the wire:
 * unreachable, timeouts, 5xx, rate limits and bad nonces are retryable; the CA's refusals are not,
 * and name the hostname when the CA said which one. An error from before any request is returned
 * as it is.
 */
export function explainCaFailure(
	err: unknown,
	trace: RequestTrace,
	timeoutMs: number,
	hostnames: readonly string[],
): unknown {
	if (err instanceof IssuerError) return err;
	// Nothing was sent to the CA: the error is ours (a bad region, the database), not the CA's.
	if (!trace.url) return err;
	const origin = originOf(trace.url);
	const fallback = err instanceof Error ? err.message : String(err);
	if (trace.url && trace.status === undefined) {
		const network = trace.networkError;
		if (network?.code && TLS_TRUST_CODES.has(network.code)) {
			return new IssuerError(
				`cannot trust the TLS certificate of the ACME server ${origin} (${network.code}): give its CA in settings.trustedRootsPem`,
				{ retryable: false, cause: err },
			);
		}
		// axios ends a request that timed out by destroying its socket with ECONNABORTED.
		const timedOut = !network || network.code === "ECONNABORTED" || network.message === "timeout";
		const reason = timedOut
			? `no answer within ${timeoutMs} ms`
			: (network.code ?? network.message);
		return new IssuerError(`cannot reach the ACME server ${origin}: ${reason}`, {
			retryable: true,
			cause: err,
		});
	}
	const status = trace.status ?? 0;
	const problem = trace.problem;
	if (status >= 500 || status === 429 || problem?.type === "rateLimited") {
		const detail = problem?.detail || fallback;
		return new IssuerError(`the ACME server ${origin} answered ${status}: ${detail}`, {
			retryable: true,
			cause: err,
		});
	}
	if (problem?.type === "badNonce" || problem?.type === "serverInternal") {
		return new IssuerError(
			`the ACME server ${origin} failed (${problem.type}): ${problem.detail}`,
			{
				retryable: true,
				cause: err,
			},
		);
	}
	if (problem) {
		const hostname = IDENTIFIER_PROBLEMS.has(problem.type)
			? refusedHostname(problem, hostnames)
			: undefined;
		const hint = REFUSAL_HINTS[problem.type];
		const subject = hint
			? hint.endsWith(" for")
				? `${hint} ${hostname ?? hostnames.join(", ")}`
				: hint
			: `the ACME server refused the request (${problem.type})`;
		return new IssuerError(`${subject}: ${problem.detail}`, {
			retryable: !REFUSALS.has(problem.type),
			...(hostname ? { hostname } : {}),
			cause: err,
		});
	}
	return new IssuerError(`ACME issuance failed at ${trace.url}: ${fallback}`, {
		retryable: false,
		cause: err,
	});
}

/** The requested name a refusal is about: from its subproblems, or named in its detail. */
export function refusedHostname(
	problem: { detail: string; identifiers: string[] },
	hostnames: readonly string[],
): string | undefined {
	const [first] = problem.identifiers;
	if (first) return first;
	const mentioned = [...hostnames]
		.sort((a, b) => b.length - a.length)
		.find((name) => problem.detail.includes(name));
	return mentioned ?? (hostnames.length === 1 ? hostnames[0] : undefined);
}

function originOf(url: string): string {
	try {
		return new URL(url).origin;
	} catch {
		return url;
	}
}
