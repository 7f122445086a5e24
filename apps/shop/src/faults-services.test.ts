/**
 * Fault injection on the services topology: every module process has its
 * own injector and `/admin/faults`. A rule set on one process — an inbound
 * error on the catalog process, an outbound hang on the product-page
 * process's calls to recommendations — takes effect for requests that come in
 * through the gateway, and nowhere else. PostgreSQL and NATS as in
 * `services.test.ts`; the run's namespace is removed afterwards.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { testPostgresUrl } from '@bulwark/store/testing';
import { loadConfig, type ModuleName } from './config.js';
import { INTERNAL_KEY_HEADER } from './platform.js';
import { startServices, type ServicesSet } from './services/launcher.js';
import { removeRunData, testNatsUrl } from './services/run-data.js';

const natsUrl = testNatsUrl;

describe('fault injection on the services topology (a process per module behind the gateway)', () => {
  const config = loadConfig({
    env: {},
    overrides: {
      topology: 'services',
      port: 0,
      logLevel: 'silent',
      telemetry: { enabled: false },
      services: { transport: 'nats', natsUrl, db: testPostgresUrl, namespace: `shopfaults${randomBytes(3).toString('hex')}`, poolSize: 2, startTimeoutMs: 45_000 },
      recommendations: { latencyMs: 0, errorRate: 0 },
      productPage: { timeoutMs: 300 },
    },
  });
  let set: ServicesSet | undefined;

  before(async () => {
    try {
      set = await startServices(config);
    } catch (error) {
      await removeRunData(config).catch(() => undefined);
      throw error;
    }
  });
  after(async () => {
    try {
      const exits = await set?.stop();
      for (const [name, exit] of Object.entries(exits ?? {})) assert.deepEqual(exit, { code: 0, signal: null }, `${name} exited ${JSON.stringify(exit)}`);
    } finally {
      await removeRunData(config);
    }
  });

  /** The admin API of one module's own process (not reachable through the gateway). */
  async function admin(module: ModuleName, method: string, path = '', body?: unknown, key: string | null = config.internalKey) {
    const origin = new URL((set as ServicesSet).modules[module]).origin;
    const headers: Record<string, string> = {};
    if (key !== null) headers[INTERNAL_KEY_HEADER] = key;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${origin}/admin/faults${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const text = await res.text();
    return { status: res.status, body: (text === '' ? {} : JSON.parse(text)) as Record<string, unknown> };
  }
  const viaGateway = async (path: string) => {
    const res = await fetch(`${(set as ServicesSet).url}${path}`);
    return { status: res.status, fault: res.headers.get('x-bulwark-fault'), body: (await res.json()) as Record<string, unknown> };
  };

  it('an inbound rule on the catalog process answers requests that come through the gateway', async () => {
    assert.equal((await admin('catalog', 'GET', '', undefined, null)).status, 403, 'the internal key is required');
    assert.equal((await viaGateway('/api/catalog/products')).status, 200);
    const put = await admin('catalog', 'PUT', '/catalog-down', { kind: 'error', direction: 'inbound', match: { module: 'catalog', route: 'GET /api/catalog/products' }, status: 503 });
    assert.equal(put.status, 200, JSON.stringify(put.body));

    const faulted = await viaGateway('/api/catalog/products');
    assert.equal(faulted.status, 503);
    assert.equal(faulted.fault, 'catalog-down');
    assert.equal(faulted.body.type, 'https://bulwark.dev/problems/faults/injected');
    assert.equal((await viaGateway('/api/catalog/products/KB-001')).status, 200, 'other routes of the process are untouched');
    const stats = ((await admin('catalog', 'GET')).body.rules as { stats: { injected: number } }[])[0]?.stats;
    assert.ok((stats?.injected ?? 0) >= 1);
    assert.deepEqual((await admin('orders', 'GET')).body.rules, [], 'other processes have their own (empty) rule sets');

    assert.equal((await admin('catalog', 'DELETE', '/catalog-down')).status, 204);
    assert.equal((await viaGateway('/api/catalog/products')).status, 200);
  });

  it("an outbound hang on the product-page process's calls to recommendations: the page answers through the gateway without live recommendations", async () => {
    const live = await viaGateway('/api/product-page/KB-001');
    assert.equal(live.status, 200);
    assert.equal((live.body.recommendations as { source: string }).source, 'live');
    assert.equal((await admin('productPage', 'PUT', '/recs-hang', { kind: 'hang', direction: 'outbound', match: { module: 'productPage', dependency: 'recommendations' } })).status, 200);

    const degraded = await viaGateway('/api/product-page/KB-001');
    assert.equal(degraded.status, 200, JSON.stringify(degraded.body));
    assert.notEqual((degraded.body.recommendations as { source: string }).source, 'live');
    assert.equal(((await admin('productPage', 'GET')).body.rules as { stats: { injected: number } }[])[0]?.stats.injected, 1);
    assert.equal((await admin('productPage', 'DELETE')).status, 204);
  });
});
