/**
 * CreateOrderSaga (DESIGN.md §9):
 *
 *   PENDING -> INVENTORY_RESERVED -> PAYMENT_CHARGED -> CONFIRMED
 *   inventory refused           -> CANCELLED
 *   payment refused             -> INVENTORY_RELEASED -> CANCELLED
 *   confirmation failed         -> PAYMENT_REFUNDED -> INVENTORY_RELEASED -> CANCELLED
 *
 * Steps: `recordOrder` (the order row was written with the saga; its
 * compensation — run last — makes the cancellation durable), `reserveInventory`,
 * `chargePayment`, `confirmOrder` (the pivot: CONFIRMED and the OrderConfirmed
 * outbox row in one local transaction; the notification follows
 * asynchronously, off the critical path), then `commitReservation` (retriable:
 * held stock becomes sold). Semantic lock `order:<id>`: one saga per order.
 */
import { defineSaga, type SagaDefinition } from '@bulwark/saga';
import type { Participant } from '@bulwark/saga/participants';

export interface OrderLine {
  sku: string;
  qty: number;
  unitPrice: number;
}

// A type alias (not an interface), so it is a `Record<string, unknown>` and step outputs merge into it with their keys intact.
export type OrderInput = {
  orderId: string;
  userId: string;
  items: OrderLine[];
  total: number;
  currency: string;
  paymentMethod: string;
};

export type OrderStatus = 'PENDING' | 'INVENTORY_RESERVED' | 'PAYMENT_CHARGED' | 'CONFIRMED' | 'PAYMENT_REFUNDED' | 'INVENTORY_RELEASED' | 'CANCELLED';
export const TERMINAL_STATUSES: ReadonlySet<OrderStatus> = new Set(['CONFIRMED', 'CANCELLED']);

/** What the saga needs from the orders module's own data. */
export interface OrderRecords {
  /** Moves the order to `to` if the transition is allowed (idempotent: already there is fine). */
  setStatus(orderId: string, to: OrderStatus): Promise<void>;
  /** The pivot: CONFIRMED + OrderConfirmed in one transaction (a repeat is a no-op). */
  confirm(input: OrderInput): Promise<void>;
}

export interface SagaTiming {
  deadlineMs: number;
  attemptTimeoutMs: number;
}

function parseOrderInput(raw: unknown): OrderInput {
  const o = raw as Partial<OrderInput> | null;
  if (typeof o !== 'object' || o === null) throw new Error('input must be an object');
  if (typeof o.orderId !== 'string' || typeof o.userId !== 'string') throw new Error('orderId and userId are required');
  if (!Array.isArray(o.items) || o.items.length === 0) throw new Error('items are required');
  for (const i of o.items) {
    if (typeof i?.sku !== 'string' || !Number.isInteger(i.qty) || i.qty < 1 || !Number.isInteger(i.unitPrice) || i.unitPrice < 0) throw new Error('each item needs sku, qty >= 1 and unitPrice');
  }
  if (typeof o.total !== 'number' || !Number.isInteger(o.total) || typeof o.currency !== 'string' || typeof o.paymentMethod !== 'string') throw new Error('total, currency and paymentMethod are required');
  return { orderId: o.orderId, userId: o.userId, items: o.items, total: o.total, currency: o.currency, paymentMethod: o.paymentMethod };
}

export function createOrderSaga(deps: { inventory: Participant; payments: Participant; records: OrderRecords; timing: SagaTiming }): SagaDefinition {
  const { inventory, payments, records, timing } = deps;
  const retry = { maxAttempts: 6, backoff: { baseMs: 50, capMs: 1_000 } };
  const compensationRetry = { maxAttempts: 20, backoff: { baseMs: 100, capMs: 5_000 }, retryOn: () => true };
  const step = { retry, compensationRetry, attemptTimeoutMs: timing.attemptTimeoutMs };

  return defineSaga<OrderInput>('CreateOrder', {
    version: 1,
    input: parseOrderInput,
    lockKey: (input) => `order:${input.orderId}`,
    deadlineMs: timing.deadlineMs,
  })
    .step('recordOrder', {
      invoke: () => Promise.resolve(undefined),
      compensate: (order) => records.setStatus(order.orderId, 'CANCELLED'),
      compensationRetry,
    })
    .step('reserveInventory', {
      invoke: async (order, ctx) => {
        const r = await inventory.call<{ reservationId: string }>('reserve', { orderId: order.orderId, items: order.items.map(({ sku, qty }) => ({ sku, qty })) }, ctx);
        await records.setStatus(order.orderId, 'INVENTORY_RESERVED');
        return { reservationId: r.reservationId };
      },
      compensate: async (order, ctx) => {
        await inventory.call('release', {}, ctx);
        await records.setStatus(order.orderId, 'INVENTORY_RELEASED');
      },
      ...step,
    })
    .step('chargePayment', {
      invoke: async (order, ctx) => {
        const c = await payments.call<{ chargeId: string }>('charge', { orderId: order.orderId, amount: order.total, currency: order.currency, paymentMethod: order.paymentMethod }, ctx);
        await records.setStatus(order.orderId, 'PAYMENT_CHARGED');
        return { chargeId: c.chargeId };
      },
      compensate: async (order, ctx) => {
        await payments.call('refund', {}, ctx);
        await records.setStatus(order.orderId, 'PAYMENT_REFUNDED');
      },
      ...step,
    })
    .step('confirmOrder', {
      pivot: true,
      invoke: (order) => records.confirm(order),
      retry: { maxAttempts: 5, backoff: { baseMs: 50, capMs: 1_000 }, retryOn: () => true },
    })
    .step('commitReservation', {
      invoke: async (order, ctx) => void (await inventory.call('commit', { reservationId: order.reservationId }, ctx)),
      attemptTimeoutMs: timing.attemptTimeoutMs,
    })
    .build();
}
