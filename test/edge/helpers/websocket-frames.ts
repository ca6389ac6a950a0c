import { createHash } from "node:crypto";

/** RFC 6455 section 4.2.2: the accept value a server derives from the client's key. */
export function websocketAccept(key: string): string {
	return createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
}

/** One final text frame; clients must mask, servers must not. */
export function encodeTextFrame(text: string, masked: boolean): Buffer {
	const payload = Buffer.from(text);
	if (payload.length > 125) throw new Error("test frames are short");
	const header = Buffer.from([0x81, (masked ? 0x80 : 0) | payload.length]);
	if (!masked) return Buffer.concat([header, payload]);
	const mask = crypto.getRandomValues(Buffer.alloc(4));
	const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
	return Buffer.concat([header, mask, body]);
}

/** Decodes one short frame from the start of `data`; undefined until it is complete. */
export function decodeFrame(
	data: Buffer,
): { opcode: number; text: string; length: number } | undefined {
	if (data.length < 2) return undefined;
	const masked = (data[1]! & 0x80) !== 0;
	const size = data[1]! & 0x7f;
	const start = 2 + (masked ? 4 : 0);
	if (size > 125) throw new Error("test frames are short");
	if (data.length < start + size) return undefined;
	let payload = data.subarray(start, start + size);
	if (masked) {
		const mask = data.subarray(2, 6);
		payload = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
	}
	return { opcode: data[0]! & 0x0f, text: payload.toString(), length: start + size };
}
