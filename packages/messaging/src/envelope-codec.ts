/** The wire form of an envelope (JSON), and a strict parser for it. */
import type { Envelope } from './envelope.js';

/** A delivery whose body is not an envelope. Dead-lettered, never retried. */
export class MalformedEnvelopeError extends Error {
  readonly code = 'BULWARK_MALFORMED_ENVELOPE';
  constructor(reason: string) {
    super(`malformed envelope: ${reason}`);
    this.name = 'MalformedEnvelopeError';
  }
}

export function encodeEnvelope(envelope: Envelope): string {
  return JSON.stringify(envelope);
}

/** Parses and checks an envelope's shape; throws `MalformedEnvelopeError`. */
export function decodeEnvelope(raw: string): Envelope {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (error) {
    throw new MalformedEnvelopeError(`not JSON (${(error as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new MalformedEnvelopeError('not an object');
  const e = value as Record<string, unknown>;
  for (const field of ['id', 'type', 'key', 'occurredAt'] as const) {
    if (typeof e[field] !== 'string' || e[field] === '') throw new MalformedEnvelopeError(`"${field}" must be a non-empty string`);
  }
  if (typeof e.version !== 'number' || !Number.isInteger(e.version) || e.version < 1) throw new MalformedEnvelopeError('"version" must be an integer >= 1');
  const headers = e.headers ?? {};
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers) || Object.values(headers).some((v) => typeof v !== 'string')) {
    throw new MalformedEnvelopeError('"headers" must be an object of strings');
  }
  if (!('payload' in e)) throw new MalformedEnvelopeError('"payload" is missing');
  return { id: e.id as string, type: e.type as string, version: e.version, key: e.key as string, occurredAt: e.occurredAt as string, headers: headers as Record<string, string>, payload: e.payload };
}

/** Decodes `raw` for a `Delivery`: the envelope, or the reason it is not one. */
export function parseDelivery(raw: string): { envelope: Envelope | undefined; parseError: Error | undefined } {
  try {
    return { envelope: decodeEnvelope(raw), parseError: undefined };
  } catch (error) {
    return { envelope: undefined, parseError: error as Error };
  }
}
