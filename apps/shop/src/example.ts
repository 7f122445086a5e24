/** The ready-to-paste example both entry points print: place an order as the demo user, then follow it. */
import { randomUUID } from 'node:crypto';
import type { ShopConfig } from './config.js';

export function orderExample(url: string, token: string, config: ShopConfig): string {
  const body = JSON.stringify({ items: [{ sku: 'KB-001', qty: 1 }, { sku: 'CB-005', qty: 2 }] });
  return [
    `  TOKEN='${token}'`,
    `  curl -sS -X POST ${url}/api/orders \\`,
    `    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\`,
    `    -H 'Idempotency-Key: ${randomUUID()}' \\`,
    `    -d '${body}'`,
    `  # then, with the orderId it answers:`,
    `  curl -sS ${url}/api/orders/<orderId> -H "Authorization: Bearer $TOKEN"`,
    `  curl -sSN ${url}/api/orders/<orderId>/events -H "Authorization: Bearer $TOKEN"`,
    `  # a new token (valid ${config.auth.accessTokenTtlSec} s):`,
    `  curl -sS -X POST ${url}/api/users/token -H 'Content-Type: application/json' -d '{"username":"${config.seed.demoUsername}","password":"${config.seed.demoPassword}"}'`,
  ].join('\n');
}
