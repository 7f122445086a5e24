/** Messages between modules (the published language). */
import { defineMessage } from '@bulwark/messaging';

export const ORDERS_TOPIC = 'orders';

export interface OrderConfirmedPayload {
  orderId: string;
  userId: string;
  total: number;
  currency: string;
  items: { sku: string; qty: number; unitPrice: number }[];
}

export const OrderConfirmed = defineMessage<OrderConfirmedPayload>('OrderConfirmed', 1, (raw) => {
  const p = raw as Partial<OrderConfirmedPayload> | null;
  if (typeof p !== 'object' || p === null) throw new Error('payload must be an object');
  if (typeof p.orderId !== 'string' || typeof p.userId !== 'string') throw new Error('orderId and userId are required');
  if (typeof p.total !== 'number' || typeof p.currency !== 'string' || !Array.isArray(p.items)) throw new Error('total, currency and items are required');
  return { orderId: p.orderId, userId: p.userId, total: p.total, currency: p.currency, items: p.items };
});
