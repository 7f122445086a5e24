import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, envName, loadConfig } from './config.js';

const refusal = (fn: () => unknown, key: string) =>
  assert.throws(fn, (e: unknown) => e instanceof ConfigError && e.key === key && e.message.includes(key), `expected a ConfigError naming ${key}`);

describe('shop configuration', () => {
  it('defaults to the monolith on ./data with a random internal key', () => {
    const c = loadConfig({ env: {} });
    assert.equal(c.topology, 'monolith');
    assert.equal(c.dataDir, './data');
    assert.equal(c.port, 3000);
    assert.ok(c.internalKey.length >= 24);
    assert.notEqual(loadConfig({ env: {} }).internalKey, c.internalKey);
  });

  it('reads env (SHOP_ + upper snake, __ between levels) over a JSON file over the defaults', () => {
    assert.equal(envName('payments.declineRate'), 'SHOP_PAYMENTS__DECLINE_RATE');
    const dir = mkdtempSync(join(tmpdir(), 'shop-config-'));
    try {
      const file = join(dir, 'shop.json');
      writeFileSync(file, JSON.stringify({ port: 4000, payments: { declineRate: 0.1, errorRate: 0.2 } }));
      const c = loadConfig({ env: { SHOP_CONFIG: file, SHOP_PORT: '4100', SHOP_PAYMENTS__DECLINE_RATE: '0.3', SHOP_TELEMETRY__ENABLED: 'false' } });
      assert.equal(c.port, 4100);
      assert.equal(c.payments.declineRate, 0.3);
      assert.equal(c.payments.errorRate, 0.2);
      assert.equal(c.telemetry.enabled, false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stops on a bad value, naming the key', () => {
    refusal(() => loadConfig({ env: { SHOP_PORT: 'eighty' } }), 'SHOP_PORT');
    refusal(() => loadConfig({ env: { SHOP_PAYMENTS__ERROR_RATE: '1.5' } }), 'SHOP_PAYMENTS__ERROR_RATE');
    refusal(() => loadConfig({ env: {}, overrides: { port: 70_000 } }), 'port');
    refusal(() => loadConfig({ env: {}, overrides: { productPage: { bulkheads: { inventory: 0 } } } }), 'productPage.bulkheads.inventory');
    refusal(() => loadConfig({ env: {}, overrides: { payments: { declineRte: 0.1 } } }), 'payments.declineRte');
    refusal(() => loadConfig({ env: {}, overrides: { modules: { orders: { db: 'mysql://x' } } } }), 'modules.orders.db');
    refusal(() => loadConfig({ env: {}, overrides: { payments: { declineRate: 0.6, errorRate: 0.6 } } }), 'payments.errorRate');
    refusal(() => loadConfig({ env: {}, overrides: { inventory: { reservationTtlMs: 10_000 }, orders: { sagaDeadlineMs: 20_000 } } }), 'inventory.reservationTtlMs');
    refusal(() => loadConfig({ env: { SHOP_CONFIG: '/nonexistent/shop.json' } }), 'SHOP_CONFIG');
    refusal(() => loadConfig({ env: { SHOP_TOPOLOGY: 'cluster' } }), 'SHOP_TOPOLOGY');
    refusal(() => loadConfig({ env: { SHOP_SERVICES__TRANSPORT: 'kafka' } }), 'SHOP_SERVICES__TRANSPORT');
    refusal(() => loadConfig({ env: {}, overrides: { services: { namespace: 'Bad-Name' } } }), 'services.namespace');
    refusal(() => loadConfig({ env: {}, overrides: { services: { db: 'sqlite:./x.db' } } }), 'services.db');
    refusal(() => loadConfig({ env: {}, overrides: { topology: 'services', modules: { orders: { url: 'http://127.0.0.1:4001/api/orders' } } } }), 'modules.orders.url');
  });

  it('configures fault injection: seed, rules file and admin API, by file, env or overrides', () => {
    assert.deepEqual(loadConfig({ env: {} }).faults, { seed: 1, file: '', admin: true });
    assert.deepEqual(loadConfig({ env: { SHOP_FAULTS__SEED: '9', SHOP_FAULTS__ADMIN: 'false' } }).faults, { seed: 9, file: '', admin: false });
    refusal(() => loadConfig({ env: { SHOP_FAULTS__SEED: '-1' } }), 'SHOP_FAULTS__SEED');
    refusal(() => loadConfig({ env: {}, overrides: { faults: { rules: [] } } }), 'faults.rules');
    refusal(() => loadConfig({ env: { SHOP_FAULTS__FILE: '/nonexistent/faults.json' } }), 'faults.file');
  });

  it('accepts the services topology, with NATS and PostgreSQL by default and RabbitMQ by configuration', () => {
    const c = loadConfig({ env: { SHOP_TOPOLOGY: 'services' } });
    assert.equal(c.topology, 'services');
    assert.equal(c.services.transport, 'nats');
    assert.match(c.services.db, /^postgres:\/\//);
    assert.equal(loadConfig({ env: { SHOP_TOPOLOGY: 'services', SHOP_SERVICES__TRANSPORT: 'rabbitmq' } }).services.transport, 'rabbitmq');
  });
});
