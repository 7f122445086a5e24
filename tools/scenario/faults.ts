/**
 * The scenario runner's side of the fault admin API that every shop process
 * serves (`/admin/faults`, header `x-shop-internal-key`). The runner only ever
 * talks HTTP to it: it puts the rules a phase switches on, deletes the ones
 * the phase switches off (reading their counts first), and deletes all of
 * its own rules at the end — never rules it did not put.
 */
import type { FaultRule } from './scenario.js';

export const INTERNAL_KEY_HEADER = 'x-shop-internal-key';

/** Counts of a rule as the admin reports them. */
export interface FaultStats {
  matched: number;
  injected: number;
}

/** A refusal of the admin API (a 400 names the rule's field). */
export class FaultAdminError extends Error {
  constructor(
    readonly admin: string,
    readonly status: number,
    readonly detail: string,
    /** The field the admin named (`field` or the first `invalid-params` name), if any. */
    readonly field: string | undefined,
    /** The rule refused, when known. */
    readonly rule?: string,
  ) {
    super(`fault admin ${admin}: ${status} ${detail}`);
    this.name = 'FaultAdminError';
  }
}

async function call(admin: string, key: string, method: string, path: string, body?: unknown, timeoutMs = 10_000): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = { [INTERNAL_KEY_HEADER]: key, accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${admin}/admin/faults${path}`, {
    method,
    headers,
    signal: AbortSignal.timeout(timeoutMs),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, text: await res.text() };
}

function refusal(admin: string, status: number, text: string, rule?: string): FaultAdminError {
  let detail = text.slice(0, 500);
  let field: string | undefined;
  try {
    const p = JSON.parse(text) as { detail?: unknown; field?: unknown; 'invalid-params'?: { name?: unknown }[] };
    if (typeof p.detail === 'string') detail = p.detail;
    if (typeof p.field === 'string') field = p.field;
    else if (typeof p['invalid-params']?.[0]?.name === 'string') field = p['invalid-params'][0].name;
  } catch {
    // not JSON: keep the text
  }
  return new FaultAdminError(admin, status, detail, field, rule);
}

/** One or more fault admins (one per shop process) driven together. */
export class FaultAdmins {
  /** Rule ids this client put and has not deleted yet. */
  private readonly active = new Set<string>();
  /** Counts accumulated per rule id, over every admin and every time the rule was on. */
  readonly stats = new Map<string, FaultStats>();

  constructor(
    readonly admins: readonly string[],
    private readonly key: string,
  ) {}

  /** Rule ids currently on. */
  get on(): ReadonlySet<string> {
    return this.active;
  }

  /** Every rule on each admin, with its counts: `GET /admin/faults`. */
  async list(): Promise<{ admin: string; rules: (FaultRule & { id: string; stats?: FaultStats })[] }[]> {
    return Promise.all(
      this.admins.map(async (admin) => {
        const r = await call(admin, this.key, 'GET', '');
        if (r.status !== 200) throw refusal(admin, r.status, r.text);
        const body = JSON.parse(r.text) as { rules?: (FaultRule & { id: string; stats?: FaultStats })[] };
        return { admin, rules: body.rules ?? [] };
      }),
    );
  }

  /** Adds the counts of `ids` (as the admins report them now) to `stats`. */
  private async collect(ids: ReadonlySet<string>): Promise<void> {
    if (ids.size === 0) return;
    for (const { rules } of await this.list()) {
      for (const rule of rules) {
        if (!ids.has(rule.id) || rule.stats === undefined) continue;
        const s = this.stats.get(rule.id) ?? { matched: 0, injected: 0 };
        s.matched += rule.stats.matched;
        s.injected += rule.stats.injected;
        this.stats.set(rule.id, s);
      }
    }
  }

  /**
   * Makes exactly `rules` (by id) the runner's rules that are on: deletes
   * those no longer wanted (after reading their counts), puts the new ones.
   * A rule already on stays as it is (its counts keep running).
   */
  async apply(rules: ReadonlyMap<string, FaultRule>): Promise<void> {
    const off = new Set([...this.active].filter((id) => !rules.has(id)));
    await this.collect(off);
    await Promise.all([...off].map((id) => this.remove(id)));
    for (const [id, rule] of rules) {
      if (this.active.has(id)) continue;
      await Promise.all(
        this.admins.map(async (admin) => {
          const r = await call(admin, this.key, 'PUT', `/${encodeURIComponent(id)}`, rule);
          if (r.status !== 200 && r.status !== 201) throw refusal(admin, r.status, r.text, id);
        }),
      );
      this.active.add(id);
    }
  }

  /**
   * Has every admin validate `rules` without applying them: each is put with
   * probability 0 (matches nothing is injected), then removed. Throws the
   * first refusal (`FaultAdminError`), after removing what was put.
   */
  async check(rules: ReadonlyMap<string, FaultRule>): Promise<void> {
    const put: string[] = [];
    try {
      for (const [id, rule] of rules) {
        await Promise.all(
          this.admins.map(async (admin) => {
            const r = await call(admin, this.key, 'PUT', `/${encodeURIComponent(id)}`, { ...rule, probability: 0 });
            if (r.status !== 200 && r.status !== 201) throw refusal(admin, r.status, r.text, id);
          }),
        );
        put.push(id);
      }
    } finally {
      await Promise.all(put.map((id) => this.remove(id)));
    }
  }

  private async remove(id: string): Promise<void> {
    await Promise.all(
      this.admins.map(async (admin) => {
        const r = await call(admin, this.key, 'DELETE', `/${encodeURIComponent(id)}`);
        if (r.status !== 204 && r.status !== 200 && r.status !== 404) throw refusal(admin, r.status, r.text);
      }),
    );
    this.active.delete(id);
  }

  /**
   * Deletes every rule this client put (reading their counts first, when the
   * admins answer). `extra` ids are deleted too (rules a crashed earlier step
   * may have left). Tries every rule and admin even when one fails; throws the
   * first failure after.
   */
  async clear(extra: readonly string[] = []): Promise<void> {
    const ids = new Set([...this.active, ...extra]);
    try {
      await this.collect(new Set(this.active));
    } catch {
      // counts are a nice-to-have; removing the rules is not
    }
    let first: Error | undefined;
    for (const id of ids) {
      try {
        await this.remove(id);
      } catch (error) {
        first ??= error instanceof Error ? error : new Error(String(error));
      }
    }
    if (first !== undefined) throw first;
  }
}
