import "reflect-metadata";
import * as x509 from "@peculiar/x509";

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };

export interface IssuedTestCertificate {
	chainPem: string;
	keyPem: string;
	serial: string;
	notBefore: Date;
	notAfter: Date;
}

export interface TestCa {
	certPem: string;
	issue(hostname: string): Promise<IssuedTestCertificate>;
}

/** A throwaway CA (ECDSA P-256) for the edge tests; independent of the product's internal CA. */
export async function createTestCa(name = "Castellan Edge Test CA"): Promise<TestCa> {
	x509.cryptoProvider.set(crypto);
	const keys = await crypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"]);
	const notBefore = new Date(Date.now() - 60_000);
	const notAfter = new Date(Date.now() + 24 * 3600_000);
	const ca = await x509.X509CertificateGenerator.createSelfSigned({
		serialNumber: randomSerial(),
		name: `CN=${name}`,
		notBefore,
		notAfter,
		signingAlgorithm: ALGORITHM,
		keys,
		extensions: [
			new x509.BasicConstraintsExtension(true, undefined, true),
			new x509.KeyUsagesExtension(
				x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
				true,
			),
			await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
		],
	});
	return {
		certPem: ca.toString("pem"),
		async issue(hostname) {
			const leafKeys = await crypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"]);
			const serial = randomSerial();
			const leaf = await x509.X509CertificateGenerator.create({
				serialNumber: serial,
				subject: `CN=${hostname}`,
				issuer: ca.subject,
				notBefore,
				notAfter,
				signingAlgorithm: ALGORITHM,
				publicKey: leafKeys.publicKey,
				signingKey: keys.privateKey,
				extensions: [
					new x509.BasicConstraintsExtension(false, undefined, true),
					new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
					new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
					new x509.SubjectAlternativeNameExtension([{ type: "dns", value: hostname }]),
					await x509.AuthorityKeyIdentifierExtension.create(ca, false),
				],
			});
			const pkcs8 = await crypto.subtle.exportKey("pkcs8", leafKeys.privateKey);
			return {
				chainPem: `${leaf.toString("pem")}\n${ca.toString("pem")}\n`,
				keyPem: x509.PemConverter.encode(pkcs8, "PRIVATE KEY"),
				serial,
				notBefore,
				notAfter,
			};
		},
	};
}

function randomSerial(): string {
	const bytes = crypto.getRandomValues(new Uint8Array(12));
	bytes[0] = (bytes[0]! & 0x7f) | 0x01; // positive and without a leading zero byte
	return Buffer.from(bytes).toString("hex");
}
