/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/): validates the
 * incoming `traceparent` and `tracestate` so only well-formed values reach
 * the request context and, through the client, the next hop. An invalid
 * `traceparent` is dropped (the spec's "restart the trace"); `tracestate` is
 * kept only with a valid `traceparent`, and dropped whole when malformed.
 */

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-|$)/;
const ZERO_TRACE = '00000000000000000000000000000000';
const ZERO_SPAN = '0000000000000000';
const TRACESTATE_KEY = /^(?:[a-z0-9][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13})$/;
const TRACESTATE_VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;
const MAX_MEMBERS = 32;
const MAX_TRACESTATE = 512;

/**
 * The `traceparent` to propagate, or `undefined` when `value` is not a valid
 * one. A future version is accepted if its first four fields parse, and
 * propagated as version `00`, as the spec asks.
 */
export function parseTraceparent(value: string): string | undefined {
  const m = TRACEPARENT.exec(value);
  if (m === null) return undefined;
  const [, version, traceId, parentId, flags, rest] = m as unknown as [string, string, string, string, string, string];
  if (version === 'ff' || traceId === ZERO_TRACE || parentId === ZERO_SPAN) return undefined;
  if (version === '00') return rest === '' ? value : undefined;
  return `00-${traceId}-${parentId}-${flags}`;
}

/** The `tracestate` to propagate, or `undefined` when `value` is malformed (or empty). */
export function parseTracestate(value: string): string | undefined {
  if (value.length > MAX_TRACESTATE) return undefined;
  const members: string[] = [];
  const keys = new Set<string>();
  for (const raw of value.split(',')) {
    const member = raw.trim();
    if (member === '') continue;
    const eq = member.indexOf('=');
    if (eq <= 0) return undefined;
    const key = member.slice(0, eq);
    if (!TRACESTATE_KEY.test(key) || !TRACESTATE_VALUE.test(member.slice(eq + 1)) || keys.has(key)) return undefined;
    keys.add(key);
    members.push(member);
  }
  if (members.length === 0 || members.length > MAX_MEMBERS) return undefined;
  return members.join(',');
}
