/**
 * `ProblemError`: an error that is an RFC 9457 problem. Throw one from a
 * route (or build it with `problem()`) and the kit answers with exactly that
 * problem, status and headers.
 *
 * The contract the kit renders is duck-typed, so other packages need not
 * import this class: any thrown value with a `toProblem()` method (and
 * optionally a `headers` record) is rendered as the problem it returns.
 * `ProblemError` is the kit's own implementation, with a stable `code`, a
 * `retryable` flag and an identity (`instanceof`, `isProblemError`) that holds
 * across two installed copies of this package through a `Symbol.for` brand.
 *
 * @example
 * ```ts
 * app.get('/orders/:id', async (request) => {
 *   const order = await orders.find(request.params.id);
 *   if (order === undefined) throw problem('not-found', `order ${request.params.id} does not exist`);
 *   return order;
 * });
 * ```
 */
import { problemTypes, problemTypeUri, type ProblemSlug } from './problem-types.js';

const kBrand = Symbol.for('bulwark.http.problem-error');

/** An RFC 9457 problem object: the standard members and any extension members. */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  [extension: string]: unknown;
}

/**
 * What the kit renders: anything with `toProblem()`, optionally with response headers.
 *
 * @example
 * ```ts
 * class PaymentDeclined extends Error implements ProblemSource {
 *   toProblem() { return { type: 'https://shop.example/problems/declined', title: 'Payment declined', status: 402 }; }
 * }
 * ```
 */
export interface ProblemSource {
  toProblem(): ProblemDetails;
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * What a `ProblemError` is made of. `type` is a full URI, or the slug of a
 * kit problem type (then `status`, `title`, `code` and `retryable` default to
 * the registry's).
 *
 * @example
 * ```ts
 * const init: ProblemInit = { type: 'https://shop.example/problems/out-of-stock', status: 409, title: 'Out of stock', extensions: { sku } };
 * ```
 */
export interface ProblemInit {
  type: string;
  status?: number;
  title?: string;
  detail?: string;
  instance?: string;
  /** Extension members, merged into the problem object. */
  extensions?: Record<string, unknown>;
  /** Response headers sent with the problem (`Retry-After`, `WWW-Authenticate`, ...). */
  headers?: Record<string, string>;
  /** Stable error code. Default: the registry's for a kit slug, else `BULWARK_HTTP_PROBLEM`. */
  code?: string;
  /** Whether the same request may succeed later. Default: the registry's, else true for 408, 429 and 5xx. */
  retryable?: boolean;
  cause?: unknown;
}

/** An error that renders as an RFC 9457 problem. */
export class ProblemError extends Error implements ProblemSource {
  readonly code: string;
  readonly retryable: boolean;
  readonly status: number;
  readonly type: string;
  readonly title: string;
  readonly detail: string | undefined;
  readonly instance: string | undefined;
  readonly extensions: Readonly<Record<string, unknown>>;
  readonly headers: Readonly<Record<string, string>>;

  constructor(init: ProblemInit) {
    const registered = (problemTypes as Record<string, (typeof problemTypes)[ProblemSlug] | undefined>)[init.type];
    const status = init.status ?? registered?.status ?? 500;
    const title = init.title ?? registered?.title ?? 'Error';
    super(init.detail ?? title, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'ProblemError';
    this.type = registered === undefined ? init.type : problemTypeUri(init.type);
    this.status = status;
    this.title = title;
    this.detail = init.detail;
    this.instance = init.instance;
    this.extensions = init.extensions ?? {};
    this.headers = init.headers ?? {};
    this.code = init.code ?? registered?.code ?? 'BULWARK_HTTP_PROBLEM';
    this.retryable = init.retryable ?? registered?.retryable ?? (status === 408 || status === 429 || status >= 500);
  }

  /** The problem object the kit sends: extensions first, so they can never override the standard members. */
  toProblem(): ProblemDetails {
    const problem: ProblemDetails = { ...this.extensions, type: this.type, title: this.title, status: this.status };
    if (this.detail !== undefined) problem.detail = this.detail;
    if (this.instance !== undefined) problem.instance = this.instance;
    return problem;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this !== ProblemError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return isProblemError(value);
  }
}

Object.defineProperty(ProblemError.prototype, kBrand, { value: true });

/** True for a `ProblemError` from any installed copy of `@bulwark/http`. */
export function isProblemError(value: unknown): value is ProblemError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kBrand] === true;
}

/** True for anything the kit renders as a problem: a value with a `toProblem()` method. */
export function isProblemSource(value: unknown): value is ProblemSource {
  return typeof value === 'object' && value !== null && typeof (value as { toProblem?: unknown }).toProblem === 'function';
}

/**
 * Builds a `ProblemError` for a kit problem type (by slug) or from a full `ProblemInit`.
 *
 * @example
 * ```ts
 * throw problem('not-found', 'no such order');
 * throw problem({ type: 'https://shop.example/problems/out-of-stock', status: 409, title: 'Out of stock', extensions: { sku } });
 * ```
 */
export function problem(slug: ProblemSlug, detail?: string, more?: Omit<ProblemInit, 'type' | 'detail'>): ProblemError;
export function problem(init: ProblemInit): ProblemError;
export function problem(slugOrInit: ProblemSlug | ProblemInit, detail?: string, more?: Omit<ProblemInit, 'type' | 'detail'>): ProblemError {
  if (typeof slugOrInit === 'string') return new ProblemError({ ...more, type: slugOrInit, ...(detail === undefined ? {} : { detail }) });
  return new ProblemError(slugOrInit);
}
