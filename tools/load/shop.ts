/**
 * A workload for the reference shop (apps/shop), through its public API with
 * real users, real bearer tokens and a fresh `Idempotency-Key` per order.
 *
 * `prepareShopWorkload` registers (or, when they exist, logs in) `users`
 * users, reads the catalog's SKUs, and returns a `ShopWorkload`: its
 * `workload` and `isSuccess` go into `runLoad` (spread `loadOptions`), and it
 * records every order the shop accepted (202) so `waitForOrders` can follow
 * them to CONFIRMED or CANCELLED afterwards.
 *
 * Kinds: `place-order` (POST /api/orders, success = 202), `product-page`
 * (GET /api/product-page/:sku with the user's token), `browse`
 * (GET /api/catalog/products), `my-orders` (GET /api/orders).
 */
import { randomUUID } from 'node:crypto';
import { seededRandom } from '@bulwark/resilience/testing';
import { checkTarget } from './target.js';
import type { Answer, LoadOptions, RequestSpec, Workload } from './types.js';

export type ShopKind = 'place-order' | 'product-page' | 'browse' | 'my-orders';
export type PaymentMethod = 'card_ok' | 'card_declined' | 'card_error';

/** Relative weights of the kinds (default `{ placeOrder: 1, productPage: 3, browse: 6 }`). */
export interface ShopMix {
  placeOrder?: number;
  productPage?: number;
  browse?: number;
  myOrders?: number;
}

export interface ShopWorkloadOptions {
  /** The shop's origin, e.g. `http://127.0.0.1:3000` (loopback only: LoadTargetError otherwise). */
  target: string;
  /** Users to register (or log in, when they exist). Default 10. */
  users?: number;
  /** Usernames are `${userPrefix}${i}`. Default `load-user-`. */
  userPrefix?: string;
  /** Password of every load user (8+ characters). Default `load-password-1`. */
  password?: string;
  mix?: ShopMix;
  /** Relative weights of the orders' payment methods. Default `{ card_ok: 1 }`. */
  paymentMethods?: Partial<Record<PaymentMethod, number>>;
  /**
   * Seed of the workload's own draws (kind, SKUs, quantities, payment method).
   * Default: draw from the run's `ctx.random` (runLoad's `seed`).
   */
  seed?: number;
  /** Orderable SKUs (default: the whole catalog). Product pages use the whole catalog. */
  skus?: readonly string[];
  /** Lines per order at most (distinct SKUs), default 2; quantity per line at most, default 2. */
  maxLines?: number;
  maxQty?: number;
  /**
   * With `internalKey` (the shop's `SHOP_INTERNAL_KEY`), set every orderable
   * SKU's available stock to `restock` before the run, as an operator would,
   * so a long run does not simply sell out.
   */
  restock?: number;
  internalKey?: string;
  /** Timeout of each preparation and polling request, ms. Default 10,000. */
  requestTimeoutMs?: number;
}

export interface PlacedOrder {
  orderId: string;
  /** `/api/orders/<id>`, from the 202. */
  statusUrl: string;
  /** Index of the user who placed it. */
  user: number;
  idempotencyKey: string;
}

export interface OrderOutcomes {
  /** Orders the shop accepted (202) during the run. */
  placed: number;
  confirmed: number;
  cancelled: number;
  /**
   * Cancelled after a step had succeeded (the saga compensated: stock released,
   * payment refunded), i.e. its failure was not the first step (reserveInventory).
   */
  compensated: number;
  /** Still not CONFIRMED or CANCELLED when waiting ended (or unreadable). */
  notTerminal: number;
  /** Final status of every placed order, e.g. `{ CONFIRMED: 90, CANCELLED: 8, PENDING: 2 }`. */
  byStatus: Record<string, number>;
  /** Cancelled orders by the step that failed (from `failureReason`), e.g. `{ chargePayment: 5 }`. */
  failedSteps: Record<string, number>;
  /** `place-order` requests answered with another status than 202, by status. */
  refused: Record<string, number>;
  /** `place-order` requests never answered (timeout, network error, still outstanding): their fate is unknown. */
  unanswered: number;
  /** Whether every placed order reached a terminal status before the deadline. */
  settled: boolean;
}

export interface WaitOptions {
  /** Give up after this long, ms. Default 60,000. */
  timeoutMs?: number;
  /** Pause between polling rounds, ms. Default 200. */
  pollMs?: number;
  /** Status reads in flight at once. Default 8. */
  concurrency?: number;
}

export interface ShopWorkload {
  workload: Workload;
  /** Success per kind (place-order: 202; others: 200–399); records accepted orders. Pass to runLoad. */
  isSuccess: (answer: Answer) => boolean;
  /** `{ workload, isSuccess }`, to spread into runLoad's options. */
  loadOptions: Pick<LoadOptions, 'workload' | 'isSuccess'>;
  usernames: readonly string[];
  /** Every catalog SKU, and the ones orders draw from. */
  catalogSkus: readonly string[];
  orderSkus: readonly string[];
  /** Orders accepted (202), in answer order. */
  orders: PlacedOrder[];
  /** `place-order` requests the workload issued (answered or not). */
  placeOrderRequests(): number;
  /** Polls every accepted order's status URL (as its owner) until all are terminal or `timeoutMs` passed. */
  waitForOrders(options?: WaitOptions): Promise<OrderOutcomes>;
}

interface User {
  username: string;
  token: string;
  /** Date.now() after which the token is renewed. */
  renewAt: number;
  renewing: boolean;
}

function pickWeighted<T extends string>(weights: readonly (readonly [T, number])[], r: number): T {
  const total = weights.reduce((n, [, w]) => n + w, 0);
  let x = r * total;
  for (const [value, w] of weights) {
    if (x < w) return value;
    x -= w;
  }
  return weights.at(-1)![0];
}

function checkWeights(what: string, weights: Record<string, number | undefined>): [string, number][] {
  const entries = Object.entries(weights).filter((e): e is [string, number] => e[1] !== undefined);
  for (const [k, w] of entries) if (!Number.isFinite(w) || w < 0) throw new Error(`shop workload: ${what}.${k} must be a weight >= 0, got ${w}`);
  const positive = entries.filter(([, w]) => w > 0);
  if (positive.length === 0) throw new Error(`shop workload: ${what} needs a positive weight`);
  return positive;
}

export async function prepareShopWorkload(options: ShopWorkloadOptions): Promise<ShopWorkload> {
  const { origin } = await checkTarget(options.target);
  const userCount = options.users ?? 10;
  if (!Number.isInteger(userCount) || userCount < 1) throw new Error(`shop workload: users must be a positive integer, got ${userCount}`);
  const prefix = options.userPrefix ?? 'load-user-';
  const password = options.password ?? 'load-password-1';
  const timeoutMs = options.requestTimeoutMs ?? 10_000;
  const maxLines = options.maxLines ?? 2;
  const maxQty = options.maxQty ?? 2;
  for (const [name, v] of [['maxLines', maxLines], ['maxQty', maxQty]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`shop workload: ${name} must be a positive integer, got ${v}`);
  }
  const mixInput = options.mix ?? { placeOrder: 1, productPage: 3, browse: 6 };
  const mixWeights = checkWeights('mix', {
    'place-order': mixInput.placeOrder,
    'product-page': mixInput.productPage,
    browse: mixInput.browse,
    'my-orders': mixInput.myOrders,
  }) as [ShopKind, number][];
  const paymentWeights = checkWeights('paymentMethods', options.paymentMethods ?? { card_ok: 1 }) as [PaymentMethod, number][];
  const own = options.seed === undefined ? undefined : seededRandom(options.seed);

  async function call(method: string, path: string, init: { token?: string; body?: unknown; internal?: boolean } = {}): Promise<{ status: number; body: Record<string, unknown> }> {
    const headers: Record<string, string> = {};
    if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
    if (init.internal === true && options.internalKey !== undefined) headers['x-shop-internal-key'] = options.internalKey;
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${origin}${path}`, { method, headers, signal: AbortSignal.timeout(timeoutMs), ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }) });
    const text = await res.text();
    let body: Record<string, unknown> = {};
    try {
      body = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
    } catch {
      body = { text };
    }
    return { status: res.status, body };
  }

  async function login(username: string): Promise<{ token: string; renewAt: number }> {
    const r = await call('POST', '/api/users/token', { body: { username, password } });
    if (r.status !== 200 || typeof r.body.access_token !== 'string') throw new Error(`shop workload: token for ${username}: ${r.status} ${JSON.stringify(r.body)}`);
    const ttlSec = typeof r.body.expires_in === 'number' ? r.body.expires_in : 3_600;
    // Renew when a quarter of its life (at most a minute) is left.
    return { token: r.body.access_token, renewAt: Date.now() + (ttlSec - Math.min(60, ttlSec / 4)) * 1000 };
  }

  const usernames = Array.from({ length: userCount }, (_, i) => `${prefix}${i}`);
  const users: User[] = [];
  const prepare = async (username: string): Promise<User> => {
    const r = await call('POST', '/api/users/register', { body: { username, password } });
    if (r.status !== 201 && r.status !== 409) throw new Error(`shop workload: register ${username}: ${r.status} ${JSON.stringify(r.body)}`);
    return { username, ...(await login(username)), renewing: false };
  };
  // A few at a time: registration hashes the password (scrypt), which is slow on purpose.
  for (let i = 0; i < usernames.length; i += 4) users.push(...(await Promise.all(usernames.slice(i, i + 4).map(prepare))));

  const catalog = await call('GET', '/api/catalog/products');
  const products = catalog.body.products;
  if (catalog.status !== 200 || !Array.isArray(products)) throw new Error(`shop workload: catalog: ${catalog.status} ${JSON.stringify(catalog.body)}`);
  const catalogSkus = (products as { sku: string }[]).map((p) => p.sku);
  const orderSkus = options.skus === undefined ? catalogSkus : catalogSkus.filter((s) => options.skus!.includes(s));
  if (catalogSkus.length === 0 || orderSkus.length === 0) throw new Error(`shop workload: no orderable SKUs (catalog: ${catalogSkus.join(', ') || 'empty'})`);

  if (options.restock !== undefined) {
    if (options.internalKey === undefined) throw new Error('shop workload: restock needs internalKey');
    for (const sku of orderSkus) {
      const r = await call('PUT', `/api/inventory/stock/${encodeURIComponent(sku)}`, { internal: true, body: { available: options.restock } });
      if (r.status !== 200) throw new Error(`shop workload: restock ${sku}: ${r.status} ${JSON.stringify(r.body)}`);
    }
  }

  const renew = (user: User): void => {
    user.renewing = true;
    login(user.username).then(
      (fresh) => Object.assign(user, fresh, { renewing: false }),
      () => Object.assign(user, { renewing: false, renewAt: Date.now() + 5_000 }),
    );
  };
  const tokenOf = (user: User): string => {
    if (!user.renewing && Date.now() >= user.renewAt) renew(user);
    return user.token;
  };

  const orders: PlacedOrder[] = [];
  const owner = new Map<string, number>(); // idempotency key -> user, while unanswered
  const refused: Record<string, number> = {};
  let placeOrders = 0;
  let answeredOrders = 0;

  const workload: Workload = ({ random: runRandom }) => {
    const random = own ?? runRandom;
    const kind = pickWeighted(mixWeights, random());
    const u = Math.min(users.length - 1, Math.floor(random() * users.length));
    const user = users[u]!;
    switch (kind) {
      case 'browse':
        return { method: 'GET', path: '/api/catalog/products', kind };
      case 'product-page': {
        const sku = catalogSkus[Math.floor(random() * catalogSkus.length)]!;
        return { method: 'GET', path: `/api/product-page/${encodeURIComponent(sku)}`, headers: { authorization: `Bearer ${tokenOf(user)}` }, kind };
      }
      case 'my-orders':
        return { method: 'GET', path: '/api/orders?limit=20', headers: { authorization: `Bearer ${tokenOf(user)}` }, kind };
      case 'place-order': {
        const lines = 1 + Math.floor(random() * Math.min(maxLines, orderSkus.length));
        const pool = [...orderSkus];
        const items: { sku: string; qty: number }[] = [];
        for (let i = 0; i < lines; i++) {
          const [sku] = pool.splice(Math.floor(random() * pool.length), 1);
          items.push({ sku: sku!, qty: 1 + Math.floor(random() * maxQty) });
        }
        const paymentMethod = pickWeighted(paymentWeights, random());
        const key = randomUUID();
        owner.set(key, u);
        placeOrders++;
        const spec: RequestSpec = {
          method: 'POST',
          path: '/api/orders',
          headers: { authorization: `Bearer ${tokenOf(user)}`, 'idempotency-key': key },
          body: { items, paymentMethod },
          kind,
        };
        return spec;
      }
    }
  };

  const isSuccess = (answer: Answer): boolean => {
    if (answer.kind !== 'place-order') return answer.status >= 200 && answer.status < 400;
    answeredOrders++;
    const key = answer.request?.headers?.['idempotency-key'];
    const user = key === undefined ? undefined : owner.get(key);
    if (key !== undefined) owner.delete(key);
    if (answer.status !== 202) {
      refused[answer.status] = (refused[answer.status] ?? 0) + 1;
      return false;
    }
    try {
      const body = JSON.parse(answer.body) as { orderId?: unknown; statusUrl?: unknown };
      if (typeof body.orderId === 'string' && key !== undefined && user !== undefined) {
        orders.push({ orderId: body.orderId, statusUrl: typeof body.statusUrl === 'string' ? body.statusUrl : `/api/orders/${body.orderId}`, user, idempotencyKey: key });
      }
    } catch {
      // A 202 without a JSON body is still an accepted order, but one we cannot follow.
    }
    return true;
  };

  async function waitForOrders(wait: WaitOptions = {}): Promise<OrderOutcomes> {
    const deadline = Date.now() + (wait.timeoutMs ?? 60_000);
    const pollMs = wait.pollMs ?? 200;
    const concurrency = wait.concurrency ?? 8;
    const final = new Map<string, { status: string; failureReason: string | null }>();
    let open = [...orders];
    while (open.length > 0) {
      const next: PlacedOrder[] = [];
      let i = 0;
      const worker = async (): Promise<void> => {
        while (i < open.length) {
          const order = open[i++]!;
          try {
            const r = await call('GET', order.statusUrl, { token: tokenOf(users[order.user]!) });
            const status = typeof r.body.status === 'string' ? r.body.status : `HTTP ${r.status}`;
            final.set(order.orderId, { status, failureReason: typeof r.body.failureReason === 'string' ? r.body.failureReason : null });
            if (r.body.terminal !== true) next.push(order);
          } catch {
            next.push(order);
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, open.length) }, worker));
      open = next;
      if (open.length === 0 || Date.now() + pollMs > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
    const outcome: OrderOutcomes = {
      placed: orders.length,
      confirmed: 0,
      cancelled: 0,
      compensated: 0,
      notTerminal: open.length,
      byStatus: {},
      failedSteps: {},
      refused: { ...refused },
      unanswered: placeOrders - answeredOrders,
      settled: open.length === 0,
    };
    for (const order of orders) {
      const f = final.get(order.orderId) ?? { status: 'UNKNOWN', failureReason: null };
      outcome.byStatus[f.status] = (outcome.byStatus[f.status] ?? 0) + 1;
      if (f.status === 'CONFIRMED') outcome.confirmed++;
      if (f.status !== 'CANCELLED') continue;
      outcome.cancelled++;
      const step = /[A-Za-z]+/.exec(f.failureReason ?? '')?.[0] ?? 'unknown';
      outcome.failedSteps[step] = (outcome.failedSteps[step] ?? 0) + 1;
      if (step !== 'reserveInventory') outcome.compensated++;
    }
    return outcome;
  }

  return {
    workload,
    isSuccess,
    loadOptions: { workload, isSuccess },
    usernames,
    catalogSkus,
    orderSkus,
    orders,
    placeOrderRequests: () => placeOrders,
    waitForOrders,
  };
}
