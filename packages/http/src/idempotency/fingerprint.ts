/**
 * A request's fingerprint: SHA-256 of the canonical JSON (object keys
 * sorted, at every depth) of its method, route pattern, path parameters,
 * query and body. Two requests with the same fingerprint are the same request
 * whatever the key order or whitespace of their bodies; any other difference
 * makes a reused key a 422.
 */
import { hash } from 'node:crypto';

/** Canonical JSON: like `JSON.stringify`, with object keys sorted. Buffers are encoded as base64 strings. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Buffer.isBuffer(value)) return JSON.stringify(value.toString('base64'));
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record)
    .filter((k) => record[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`).join(',')}}`;
}

/** The fingerprint of a request. */
export function requestFingerprint(method: string, route: string, params: unknown, query: unknown, body: unknown): string {
  return hash('sha256', canonicalJson({ method, route, params: params ?? null, query: query ?? null, body: body ?? null }), 'base64url');
}
