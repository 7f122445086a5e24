/**
 * Reading a response body with a size cap. The declared `content-length` is
 * checked first (refused before a byte is read); otherwise chunks are counted
 * as they arrive and the stream is destroyed the moment the cap is passed, so
 * at most one chunk past the cap is ever held.
 */
import type { Readable } from 'node:stream';

/** Thrown by `readCapped` when the body is larger than the cap; callers turn it into their own error. */
export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`body larger than ${limit} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

/**
 * The whole body as one buffer, or `BodyTooLargeError` once it passes `maxBytes`
 * (the stream is destroyed, which aborts the request and frees the socket).
 */
export async function readCapped(body: Readable, maxBytes: number, declaredLength?: string | string[]): Promise<Buffer> {
  const declared = Array.isArray(declaredLength) ? declaredLength[0] : declaredLength;
  if (declared !== undefined && /^\d+$/.test(declared) && Number(declared) > maxBytes) {
    discard(body);
    throw new BodyTooLargeError(maxBytes);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > maxBytes) {
      discard(body);
      throw new BodyTooLargeError(maxBytes);
    }
    chunks.push(buffer);
  }
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
}

/**
 * Drops a body without reading it: destroys the stream (undici then closes or
 * reuses the socket) and swallows the abort error the destruction emits.
 */
export function discard(body: Readable): void {
  body.on('error', noop);
  body.destroy();
}

function noop(): void {}
