/**
 * A tiny fetch wrapper for the demo: non-2xx answers become errors that carry
 * `status` and `headers`, which is all the default policies need to classify
 * them (transient or not, `Retry-After`). The ambient deadline travels as a
 * header. The real resilient client lives in `@bulwark/http`.
 */
import { DEADLINE_HEADER, outgoingDeadlineHeader, type CallContext } from '@bulwark/resilience';

export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    readonly headers: Headers,
  ) {
    super(`HTTP ${status}`);
    this.name = 'HttpStatusError';
  }
}

export async function getJson<T>(url: string, ctx: CallContext): Promise<T> {
  const headers: Record<string, string> = {};
  const budget = outgoingDeadlineHeader(ctx.remaining());
  if (budget !== undefined) headers[DEADLINE_HEADER] = budget;
  const res = await fetch(url, { signal: ctx.signal, headers });
  if (!res.ok) {
    await res.body?.cancel();
    throw new HttpStatusError(res.status, res.headers);
  }
  return (await res.json()) as T;
}
