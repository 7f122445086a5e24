/**
 * Request ids: a well-formed incoming `x-request-id` is kept (so one id
 * follows a request through every service), anything else is replaced by a
 * generated one and never echoed. Generation is a random per-process prefix
 * and a counter: unique across instances without touching the CSPRNG, or
 * any crypto, per request.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** The header that carries the request id, in and out. */
export const REQUEST_ID_HEADER = 'x-request-id';

/** What a kept id may look like: 1 to 128 characters of letters, digits and `-_.:~+=/@`. */
const WELL_FORMED = /^[A-Za-z0-9\-_.:~+=/@]{1,128}$/;

/** Bytes no header the kit reads may hold: controls (CR, LF, NUL, ...), DEL and anything outside ASCII. */
const INJECTION = /[^\x20-\x7e]/;

/** True when `id` may be kept and echoed as a request id. */
export function isWellFormedRequestId(id: string): boolean {
  return WELL_FORMED.test(id);
}

/** True when a header value holds bytes that could split or smuggle a header: a header-injection attempt. */
export function isHeaderInjection(value: string): boolean {
  return INJECTION.test(value);
}

const prefix = `${randomBytes(9).toString('base64url')}-`;
let counter = 0;

/** A new request id, unique in this process and, by its random prefix, across processes. */
export function generateRequestId(): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return prefix + counter.toString(36);
}

/** Fastify's `genReqId`: the incoming id when well formed, else a generated one. */
export function requestIdOf(raw: IncomingMessage): string {
  const incoming = raw.headers[REQUEST_ID_HEADER];
  return typeof incoming === 'string' && WELL_FORMED.test(incoming) ? incoming : generateRequestId();
}
