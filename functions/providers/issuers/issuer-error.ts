/**
 * A certificate issuer could not issue. `retryable` tells the provisioning and renewal jobs
 * whether waiting helps (the CA or a DNS provider is down, a 5xx, a rate limit) or whether a
 * person must change something first (the CA refused a name, the account needs binding).
 */
export class IssuerError extends Error {
	override name = "IssuerError";
	readonly retryable: boolean;
	/** The hostname the CA refused or could not validate, when it is one name. */
	readonly hostname: string | undefined;

	constructor(
		message: string,
		options: { retryable: boolean; hostname?: string; cause?: unknown },
	) {
		super(message, options.cause === undefined ? undefined : { cause: options.cause });
		this.retryable = options.retryable;
		this.hostname = options.hostname;
	}
}
