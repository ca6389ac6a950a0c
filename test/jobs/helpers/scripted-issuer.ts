import { IssuerError } from "../../../functions/providers/issuers/issuer-error";
import type {
	CertificateIssuer,
	IssuedCertificate,
	IssueRequest,
	RenewalWindow,
	StoredCertificate,
} from "../../../functions/providers/types";

export interface ScriptedIssuer extends CertificateIssuer {
	/** Every issue() call, failed ones included. */
	calls: IssueRequest[];
	/** While true, issue() fails as a CA that is down would (a retryable IssuerError). */
	failing: boolean;
	/** What renewalWindow() answers (an Error is thrown); only with `ari: true`. */
	window: RenewalWindow | Error | undefined;
	windowCalls: StoredCertificate[];
	/** Each issuance takes this long (a slow CA). */
	delayMs: number;
}

/**
 * A real issuer (the region's internal CA) whose availability the test controls, optionally
 * with an ARI window: the renewal job sees exactly what a CA that fails or answers ARI shows it.
 */
export function scriptedIssuer(
	real: CertificateIssuer,
	options: { ari?: boolean; delayMs?: number } = {},
): ScriptedIssuer {
	const issuer: ScriptedIssuer = {
		capabilities: real.capabilities,
		calls: [],
		failing: false,
		window: undefined,
		windowCalls: [],
		delayMs: options.delayMs ?? 0,
		async issue(request: IssueRequest): Promise<IssuedCertificate> {
			issuer.calls.push(request);
			if (issuer.delayMs) await new Promise((r) => setTimeout(r, issuer.delayMs));
			if (issuer.failing) {
				throw new IssuerError("the CA at https://ca.test/dir is unavailable (HTTP 503)", {
					retryable: true,
				});
			}
			return real.issue(request);
		},
		trustAnchors: (regionId) => real.trustAnchors(regionId),
	};
	if (options.ari) {
		issuer.renewalWindow = async (certificate) => {
			issuer.windowCalls.push(certificate);
			if (issuer.window instanceof Error) throw issuer.window;
			return issuer.window;
		};
	}
	return issuer;
}
