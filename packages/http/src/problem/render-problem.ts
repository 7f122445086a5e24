/**
 * Turns anything a route, hook or parser threw into a problem: the error's
 * own `toProblem()` when it has one, a kit problem type for the errors
 * Fastify and `@bulwark/resilience` raise, and for everything else a bare 500
 * that discloses nothing (no message, no stack, no class name).
 */
import { STATUS_CODES } from 'node:http';
import { isBulwarkError } from '@bulwark/resilience';
import { isProblemSource, type ProblemDetails } from './problem-error.js';
import { problemTypes, problemTypeUri, type ProblemSlug } from './problem-types.js';

/** A problem ready to send, with the headers that go with it. */
export interface RenderedProblem {
  problem: ProblemDetails;
  headers: Readonly<Record<string, string>> | undefined;
}

/** One entry of a validation problem's `invalid-params`. */
export interface InvalidParam {
  /** Where: `body`, `querystring`, `params` or `headers`. */
  in: string;
  /** Dotted path of the parameter (`items.0.sku`); empty for the whole part. */
  name: string;
  reason: string;
}

const fastifyCodes: Readonly<Record<string, ProblemSlug>> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'malformed-json',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'malformed-json',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload-too-large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported-media-type',
  FST_ERR_NOT_FOUND: 'not-found',
};

const resilienceCodes: Readonly<Record<string, ProblemSlug>> = {
  BULWARK_CIRCUIT_OPEN: 'dependency-unavailable',
  BULWARK_BULKHEAD_REJECTED: 'dependency-unavailable',
  BULWARK_RATE_LIMITED: 'dependency-unavailable',
  BULWARK_TIMEOUT: 'dependency-timeout',
  BULWARK_DEADLINE_EXCEEDED: 'dependency-timeout',
};

const byStatus: Readonly<Record<number, ProblemSlug>> = { 400: 'bad-request', 404: 'not-found', 413: 'payload-too-large', 415: 'unsupported-media-type', 429: 'rate-limited' };

/** The problem of a kit type, with an optional detail. */
export function kitProblem(slug: ProblemSlug, detail?: string): ProblemDetails {
  const t = problemTypes[slug];
  const problem: ProblemDetails = { type: problemTypeUri(slug), title: t.title, status: t.status };
  if (detail !== undefined) problem.detail = detail;
  return problem;
}

/** Renders `error` as a problem. Never throws, whatever `error` is. */
export function renderProblem(error: unknown): RenderedProblem {
  if (isProblemSource(error)) {
    try {
      const problem = error.toProblem();
      if (Number.isInteger(problem.status) && problem.status >= 400 && problem.status <= 599 && typeof problem.type === 'string' && typeof problem.title === 'string') {
        return { problem, headers: error.headers };
      }
    } catch {
      // A broken toProblem() is an internal error like any other.
    }
    return { problem: kitProblem('internal'), headers: undefined };
  }
  if (typeof error !== 'object' || error === null) return { problem: kitProblem('internal'), headers: undefined };
  const e = error as { code?: unknown; statusCode?: unknown; validation?: unknown; validationContext?: unknown; message?: unknown; retryAfterMs?: unknown };
  if (Array.isArray(e.validation)) {
    const problem = kitProblem('validation', typeof e.message === 'string' ? e.message : undefined);
    problem['invalid-params'] = invalidParams(e.validation as AjvIssue[], typeof e.validationContext === 'string' ? e.validationContext : 'body');
    return { problem, headers: undefined };
  }
  if (typeof e.code === 'string') {
    const slug = fastifyCodes[e.code];
    if (slug !== undefined) return { problem: kitProblem(slug, typeof e.message === 'string' ? e.message : undefined), headers: undefined };
    if (isBulwarkError(error)) {
      const mapped = resilienceCodes[e.code];
      if (mapped !== undefined) {
        const retryAfterMs = typeof e.retryAfterMs === 'number' && Number.isFinite(e.retryAfterMs) ? e.retryAfterMs : undefined;
        return { problem: kitProblem(mapped), headers: retryAfterMs === undefined ? undefined : { 'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) } };
      }
    }
  }
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (Number.isInteger(status) && status >= 400 && status < 500) {
    // Client errors raised by Fastify or its plugins carry messages meant for the client.
    const slug = byStatus[status];
    const detail = typeof e.message === 'string' ? e.message : undefined;
    if (slug !== undefined) return { problem: kitProblem(slug, detail), headers: undefined };
    const problem: ProblemDetails = { type: 'about:blank', title: STATUS_CODES[status] ?? 'Client error', status };
    if (detail !== undefined) problem.detail = detail;
    return { problem, headers: undefined };
  }
  return { problem: kitProblem('internal'), headers: undefined };
}

interface AjvIssue {
  instancePath?: string;
  message?: string;
  keyword?: string;
  params?: { missingProperty?: string; additionalProperty?: string };
}

/** Ajv's issues as RFC 9457 `invalid-params`: one entry per issue, named by dotted path. */
export function invalidParams(issues: readonly AjvIssue[], where: string): InvalidParam[] {
  return issues.map((issue) => {
    let name = (issue.instancePath ?? '').slice(1).replaceAll('/', '.');
    const extra = issue.params?.missingProperty ?? issue.params?.additionalProperty;
    if (extra !== undefined) name = name === '' ? extra : `${name}.${extra}`;
    return { in: where, name, reason: issue.message ?? issue.keyword ?? 'is invalid' };
  });
}
