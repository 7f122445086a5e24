/**
 * The workloads a scenario file can name: `http` (one request, repeated) and
 * `shop` (the shop's users placing orders, reading product pages and the
 * catalog: tools/load/shop.ts).
 */
import { prepareShopWorkload, type ShopWorkload } from '../load/shop.js';
import type { Answer, Workload } from '../load/types.js';
import type { WorkloadSpec } from './scenario.js';

export interface PreparedWorkload {
  workload: Workload;
  isSuccess?: (answer: Answer) => boolean;
  /** The shop workload (its accepted orders, `waitForOrders`), when it is one. */
  shop?: ShopWorkload;
  /** Releases what preparing took (called after the run). */
  close?: () => void | Promise<void>;
}

export async function prepareWorkload(spec: WorkloadSpec, target: string, options: { internalKey?: string } = {}): Promise<PreparedWorkload> {
  switch (spec.type) {
    case 'http': {
      const { method, path, headers, body } = spec;
      return { workload: () => ({ method, path, headers, ...(body === undefined ? {} : { body }) }) };
    }
    case 'shop': {
      if (spec.restock !== undefined && (options.internalKey === undefined || options.internalKey === '')) {
        throw new Error('the shop workload restocks only with the internal key (set it, or leave restock out)');
      }
      const shop = await prepareShopWorkload({
        target,
        users: spec.users,
        ...(spec.mix === undefined ? {} : { mix: spec.mix }),
        ...(spec.paymentMethod === undefined ? {} : { paymentMethods: { [spec.paymentMethod]: 1 } }),
        ...(spec.restock === undefined ? {} : { restock: spec.restock, internalKey: options.internalKey }),
      });
      return { workload: shop.workload, isSuccess: shop.isSuccess, shop };
    }
  }
}
