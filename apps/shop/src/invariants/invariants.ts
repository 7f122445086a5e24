/**
 * The invariant checker (DESIGN.md §9), run after any run against either
 * topology: it reads the shop only through its HTTP API — the internal,
 * key-guarded read routes of orders, payments and inventory — so a monolith
 * and a set of services behind a gateway are checked by the same code.
 *
 * - **money**: for every order in a terminal state, what the ledger holds for
 *   its charges (charged − refunded) is its total when CONFIRMED and 0 when
 *   CANCELLED; every charge's ledger matches its status; no charge belongs to
 *   no order; and, once quiescent, the ledger's charges − refunds equal the sum
 *   of the confirmed orders' totals.
 * - **stock**: per sku `initial = available + reserved + sold`, none negative;
 *   once quiescent, `sold` lies between the units of confirmed orders whose
 *   saga completed (their reservation was committed) and the units of every
 *   confirmed order, and nothing is still reserved unless a saga is stuck.
 * - **single-terminal-state**: an order's saga log records at most one of
 *   CONFIRMED (the pivot) and CANCELLED (recordOrder compensated), and never
 *   the one the order is not in; a completed saga's order is CONFIRMED, a
 *   compensated one's CANCELLED; every order has a saga.
 * - **no-double-charge**: at most one charge (tombstones aside) per order.
 * - **saga-deadline**: no saga queued, running or compensating past its
 *   deadline. Stuck sagas are allowed (an operator was alerted) and reported
 *   apart; sagas in flight within their deadline are reported apart too.
 *
 * The checker first waits (bounded by `settleTimeoutMs`) for quiescence: no
 * saga queued, running or compensating. Reads are ordered so that a run still
 * in flight cannot produce a false violation — sagas, then orders, then
 * payments, then inventory — and checks that need a settled system are
 * skipped (and said so in `notes`) when it is not.
 */
import { INTERNAL_KEY_HEADER } from '../platform.js';

export type InvariantName = 'money' | 'stock' | 'single-terminal-state' | 'no-double-charge' | 'saga-deadline';

export interface Violation {
  invariant: InvariantName;
  /** What it is about: `order <id>`, `sku <sku>`, `charge <id>`, `saga <id>`, `ledger`. */
  subject: string;
  message: string;
}

export interface InvariantTarget {
  /** The shop's base URL (the monolith, or the gateway in front of the services), e.g. `http://127.0.0.1:3000`. */
  url: string;
  /** The shop's internal key (header `x-shop-internal-key`). */
  internalKey: string;
  /** Per-module base URLs when they are not `<url>/api/<module>`. */
  modules?: Partial<Record<CheckedModule, string>>;
}

export type CheckedModule = 'orders' | 'payments' | 'inventory';

export interface CheckOptions {
  /** How long to wait for quiescence (no saga queued, running or compensating) before checking anyway. Default 30 s. */
  settleTimeoutMs?: number;
  /** Poll interval while waiting. Default 250 ms. */
  pollIntervalMs?: number;
  /** Timeout of each HTTP request. Default 15 s. */
  requestTimeoutMs?: number;
}

export interface SagaInfo {
  id: string;
  state: string;
  phase: string;
  step: string | null;
  failedStep: string | null;
  error: string | null;
  createdAt: number;
  deadlineAt: number | null;
  overdue: boolean;
}

export interface InvariantReport {
  violations: Violation[];
  /** No saga was queued, running or compensating when the snapshot was taken. */
  quiescent: boolean;
  /** Sagas still queued, running or compensating within their deadline (not violations), with their order's status. */
  inFlight: { id: string; sagaState: string; orderStatus: string | null; deadlineAt: number | null }[];
  /** Sagas marked stuck (waiting for an operator): allowed, reported. */
  stuck: SagaInfo[];
  /** Checks not made, and why (e.g. totals while orders were in flight). */
  notes: string[];
  counts: { orders: number; byStatus: Record<string, number>; sagas: number; charges: number; skus: number };
  /** How long the wait for quiescence took, ms. */
  settledAfterMs: number;
}

interface OrderRow {
  orderId: string;
  status: string;
  total: number;
  currency: string;
  items: { sku: string; qty: number }[];
  terminalHistory: string[];
  createdAt: number;
  updatedAt: number;
}

interface ChargeRow {
  chargeId: string;
  orderId: string | null;
  amount: number;
  currency: string;
  status: string;
  charged: number;
  refunded: number;
}

interface StockRow {
  sku: string;
  available: number;
  reserved: number;
  sold: number;
  initial: number;
}

const ACTIVE = ['queued', 'running', 'compensating'];
const TERMINAL = new Set(['CONFIRMED', 'CANCELLED']);

/** An HTTP reader of the shop's internal routes. */
export class ShopReader {
  constructor(
    private readonly target: InvariantTarget,
    private readonly timeoutMs = 15_000,
  ) {}

  async get<T>(module: CheckedModule, path: string): Promise<T> {
    const base = (this.target.modules?.[module] ?? `${this.target.url.replace(/\/+$/, '')}/api/${module}`).replace(/\/+$/, '');
    const res = await fetch(`${base}${path}`, { headers: { [INTERNAL_KEY_HEADER]: this.target.internalKey, accept: 'application/json' }, signal: AbortSignal.timeout(this.timeoutMs) });
    const text = await res.text();
    if (!res.ok) throw new Error(`GET ${base}${path}: ${res.status} ${text.slice(0, 300)}`);
    return JSON.parse(text) as T;
  }

  private async paged<T>(module: CheckedModule, path: string, key: 'orders' | 'sagas' | 'charges'): Promise<T[]> {
    const out: T[] = [];
    let after: string | null = null;
    for (;;) {
      const sep = path.includes('?') ? '&' : '?';
      const page: Record<string, unknown> & { next: string | null } = await this.get(module, after === null ? path : `${path}${sep}after=${encodeURIComponent(after)}`);
      out.push(...(page[key] as T[]));
      if (page.next === null || page.next === undefined) return out;
      after = page.next;
    }
  }

  sagas(states?: readonly string[]): Promise<SagaInfo[]> {
    return this.paged<SagaInfo>('orders', `/internal/sagas${states === undefined ? '' : `?states=${states.join(',')}`}`, 'sagas');
  }

  async activeSagas(limit = 1): Promise<SagaInfo[]> {
    return (await this.get<{ sagas: SagaInfo[] }>('orders', `/internal/sagas?states=${ACTIVE.join(',')}&limit=${limit}`)).sagas;
  }

  async overdueSagas(): Promise<SagaInfo[]> {
    return (await this.get<{ sagas: SagaInfo[] }>('orders', '/internal/sagas/overdue?limit=500')).sagas;
  }

  orders(): Promise<OrderRow[]> {
    return this.paged<OrderRow>('orders', '/internal/orders', 'orders');
  }

  charges(): Promise<ChargeRow[]> {
    return this.paged<ChargeRow>('payments', '/internal/charges', 'charges');
  }

  ledger(): Promise<{ charged: number; refunded: number; net: number; charges: number; refunds: number }> {
    return this.get('payments', '/ledger');
  }

  async stock(): Promise<StockRow[]> {
    return (await this.get<{ stock: StockRow[] }>('inventory', '/totals')).stock;
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Waits for quiescence (bounded), reads a snapshot, checks every invariant. */
export async function runInvariantCheck(target: InvariantTarget, options: CheckOptions = {}): Promise<InvariantReport> {
  const reader = new ShopReader(target, options.requestTimeoutMs);
  const settleTimeoutMs = options.settleTimeoutMs ?? 30_000;
  const pollIntervalMs = options.pollIntervalMs ?? 250;

  const began = Date.now();
  while ((await reader.activeSagas()).length > 0 && Date.now() - began < settleTimeoutMs) await sleep(pollIntervalMs);
  const settledAfterMs = Date.now() - began;

  // Read order matters: a saga's terminal state is written after its order's, an order's terminal
  // status after its money moved, and stock is committed after the order is confirmed.
  let sagas = await reader.sagas();
  const overdue = await reader.overdueSagas();
  const orders = await reader.orders();
  const charges = await reader.charges();
  const ledger = await reader.ledger();
  const stock = await reader.stock();

  const sagaById = new Map(sagas.map((s) => [s.id, s]));
  const orderById = new Map(orders.map((o) => [o.orderId, o]));
  const notes: string[] = [];
  // Second look at what arrived between reads: orders newer than the saga snapshot, charges of orders newer than the order snapshot.
  if (orders.some((o) => !sagaById.has(o.orderId))) {
    sagas = await reader.sagas();
    for (const s of sagas) if (!sagaById.has(s.id)) sagaById.set(s.id, s);
  }
  const lateOrders = new Set<string>();
  if (charges.some((c) => c.orderId !== null && c.status !== 'tombstone' && !orderById.has(c.orderId))) {
    for (const o of await reader.orders()) if (!orderById.has(o.orderId)) lateOrders.add(o.orderId);
  }

  const violations: Violation[] = [];
  const add = (invariant: InvariantName, subject: string, message: string) => violations.push({ invariant, subject, message });

  // --- saga-deadline, stuck, in flight ---
  const overdueIds = new Set<string>();
  const now = Date.now();
  for (const s of [...overdue, ...sagaById.values()]) {
    if (!ACTIVE.includes(s.state) || !s.overdue || overdueIds.has(s.id)) continue;
    overdueIds.add(s.id);
    const late = s.deadlineAt === null ? '' : ` ${Math.max(0, now - s.deadlineAt)} ms`;
    add('saga-deadline', `saga ${s.id}`, `is ${s.state} (${s.phase}, at ${s.step ?? '-'})${late} past its deadline and not marked stuck`);
  }
  const stuck = [...sagaById.values()].filter((s) => s.state === 'stuck');
  const active = [...sagaById.values()].filter((s) => ACTIVE.includes(s.state));
  const inFlight = active.filter((s) => !overdueIds.has(s.id)).map((s) => ({ id: s.id, sagaState: s.state, orderStatus: orderById.get(s.id)?.status ?? null, deadlineAt: s.deadlineAt }));
  const quiescent = active.length === 0 && lateOrders.size === 0;

  // --- single-terminal-state ---
  for (const o of orders) {
    const subject = `order ${o.orderId}`;
    const s = sagaById.get(o.orderId);
    const history = o.terminalHistory;
    if (history.includes('CONFIRMED') && history.includes('CANCELLED')) {
      add('single-terminal-state', subject, `reached two terminal states: its saga log records ${history.join(' then ')} (status ${o.status})`);
    } else if (TERMINAL.has(o.status) && history.some((h) => h !== o.status)) {
      add('single-terminal-state', subject, `is ${o.status} but its saga log records ${history.join(', ')}`);
    }
    if (s === undefined) {
      add('single-terminal-state', subject, `has no saga: nothing drives it to a terminal state (status ${o.status})`);
      continue;
    }
    if (s.state === 'completed' && (o.status !== 'CONFIRMED' || !history.includes('CONFIRMED'))) {
      add('single-terminal-state', subject, `its saga completed but the order is ${o.status}${history.includes('CONFIRMED') ? '' : ' and the saga log records no confirmation'}`);
    }
    if (s.state === 'compensated' && (o.status !== 'CANCELLED' || !history.includes('CANCELLED'))) {
      add('single-terminal-state', subject, `its saga compensated but the order is ${o.status}${history.includes('CANCELLED') ? '' : ' and the saga log records no cancellation'}`);
    }
  }

  // --- no-double-charge ---
  const chargesByOrder = new Map<string, ChargeRow[]>();
  for (const c of charges) {
    if (c.status === 'tombstone' || c.orderId === null) continue;
    const list = chargesByOrder.get(c.orderId) ?? [];
    list.push(c);
    chargesByOrder.set(c.orderId, list);
  }
  for (const [orderId, list] of chargesByOrder) {
    if (list.length > 1) add('no-double-charge', `order ${orderId}`, `charged ${list.length} times: ${list.map((c) => `${c.chargeId} (${c.amount} ${c.currency}, ${c.status})`).join(', ')}`);
  }

  // --- money ---
  for (const c of charges) {
    const net = c.charged - c.refunded;
    const expected = c.status === 'charged' ? c.amount : 0;
    const ledgerOk = c.status === 'tombstone' ? c.charged === 0 && c.refunded === 0 : c.charged === c.amount && net === expected;
    if (!ledgerOk) add('money', `charge ${c.chargeId}`, `is ${c.status} (amount ${c.amount}) but the ledger holds charged ${c.charged}, refunded ${c.refunded}`);
    if (c.status !== 'tombstone' && (c.orderId === null || (!orderById.has(c.orderId) && !lateOrders.has(c.orderId)))) {
      add('money', `charge ${c.chargeId}`, `${c.status} ${c.amount} ${c.currency} belongs to no order (${c.orderId ?? 'no order id'})`);
    }
  }
  let confirmedTotal = 0;
  for (const o of orders) {
    if (!TERMINAL.has(o.status)) continue;
    if (o.status === 'CONFIRMED') confirmedTotal += o.total;
    const list = chargesByOrder.get(o.orderId) ?? [];
    const net = list.reduce((sum, c) => sum + c.charged - c.refunded, 0);
    const expected = o.status === 'CONFIRMED' ? o.total : 0;
    if (net !== expected) add('money', `order ${o.orderId}`, `is ${o.status} (total ${o.total} ${o.currency}) but its charges net ${net} (expected ${expected})`);
  }
  if (quiescent) {
    const listed = charges.reduce((acc, c) => ({ charged: acc.charged + c.charged, refunded: acc.refunded + c.refunded }), { charged: 0, refunded: 0 });
    if (ledger.charged - ledger.refunded !== confirmedTotal) {
      add('money', 'ledger', `charges − refunds = ${ledger.charged} − ${ledger.refunded} = ${ledger.charged - ledger.refunded}, but confirmed orders total ${confirmedTotal}`);
    } else if (listed.charged !== ledger.charged || listed.refunded !== ledger.refunded) {
      add('money', 'ledger', `holds charged ${ledger.charged}, refunded ${ledger.refunded}, but its charges account for charged ${listed.charged}, refunded ${listed.refunded}`);
    }
  } else {
    notes.push(`money totals not compared: ${active.length} saga(s) in flight, ${lateOrders.size} order(s) newer than the snapshot`);
  }

  // --- stock ---
  for (const r of stock) {
    const negative = (['available', 'reserved', 'sold', 'initial'] as const).filter((k) => r[k] < 0);
    if (negative.length > 0) add('stock', `sku ${r.sku}`, `negative ${negative.map((k) => `${k} ${r[k]}`).join(', ')}`);
    if (r.available + r.reserved + r.sold !== r.initial) {
      add('stock', `sku ${r.sku}`, `initial ${r.initial} ≠ available ${r.available} + reserved ${r.reserved} + sold ${r.sold} = ${r.available + r.reserved + r.sold}`);
    }
  }
  if (quiescent) {
    const confirmedUnits = new Map<string, number>();
    const committedUnits = new Map<string, number>();
    for (const o of orders) {
      if (o.status !== 'CONFIRMED') continue;
      const committed = sagaById.get(o.orderId)?.state === 'completed';
      for (const i of o.items) {
        confirmedUnits.set(i.sku, (confirmedUnits.get(i.sku) ?? 0) + i.qty);
        if (committed) committedUnits.set(i.sku, (committedUnits.get(i.sku) ?? 0) + i.qty);
      }
    }
    const unsettled = stuck.length + [...sagaById.values()].filter((s) => s.state === 'resolved').length;
    for (const r of stock) {
      const low = committedUnits.get(r.sku) ?? 0;
      const high = confirmedUnits.get(r.sku) ?? 0;
      if (r.sold < low || r.sold > high) {
        add('stock', `sku ${r.sku}`, `sold ${r.sold}, but confirmed orders account for ${low === high ? String(low) : `${low}..${high}`} unit(s)`);
      }
      if (unsettled === 0 && r.reserved !== 0) add('stock', `sku ${r.sku}`, `${r.reserved} unit(s) reserved with no order in flight`);
    }
  } else {
    notes.push('stock not compared with orders: not quiescent');
  }

  const byStatus: Record<string, number> = {};
  for (const o of orders) byStatus[o.status] = (byStatus[o.status] ?? 0) + 1;
  return {
    violations,
    quiescent,
    inFlight,
    stuck,
    notes,
    counts: { orders: orders.length, byStatus, sagas: sagaById.size, charges: charges.length, skus: stock.length },
    settledAfterMs,
  };
}

/** The violations only (empty when every invariant holds). */
export async function checkInvariants(target: InvariantTarget, options: CheckOptions = {}): Promise<Violation[]> {
  return (await runInvariantCheck(target, options)).violations;
}

/** A human-readable report: one line per violation, then what is in flight or stuck. */
export function formatReport(report: InvariantReport): string {
  const lines: string[] = [];
  const status = Object.entries(report.counts.byStatus).map(([k, v]) => `${k} ${v}`).join(', ');
  lines.push(`checked ${report.counts.orders} orders (${status || 'none'}), ${report.counts.sagas} sagas, ${report.counts.charges} charges, ${report.counts.skus} skus; ${report.quiescent ? 'quiescent' : 'NOT quiescent'} after ${report.settledAfterMs} ms`);
  for (const v of report.violations) lines.push(`VIOLATION [${v.invariant}] ${v.subject}: ${v.message}`);
  for (const s of report.inFlight) lines.push(`in flight: saga ${s.id} ${s.sagaState}, order ${s.orderStatus ?? '-'}${s.deadlineAt === null ? '' : `, deadline ${new Date(s.deadlineAt).toISOString()}`}`);
  for (const s of report.stuck) lines.push(`stuck (operator alerted): saga ${s.id} at ${s.step ?? '-'} (${s.phase})${s.error === null ? '' : `: ${s.error}`}`);
  for (const n of report.notes) lines.push(`note: ${n}`);
  lines.push(report.violations.length === 0 ? 'OK: every invariant holds' : `FAILED: ${report.violations.length} violation(s)`);
  return lines.join('\n');
}
