import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GatewayConfigError, validateConfig } from './config.js';
import { RouteTable } from './routing.js';

const upstreams = { orders: { instances: ['http://127.0.0.1:3001'] }, payments: { instances: ['http://127.0.0.1:3002'] } };

function issuesOf(config: unknown): readonly string[] {
  try {
    validateConfig(config);
  } catch (error) {
    assert.ok(error instanceof GatewayConfigError);
    return error.issues;
  }
  return [];
}

describe('configuration validation', () => {
  it('names the route and the field of every problem, all at once', () => {
    const issues = issuesOf({
      upstreams,
      routes: [
        { name: 'a', match: { pathPrefix: '/a' }, upstream: 'orders' },
        { name: 'b', match: { pathPrefix: 'b' }, upstream: 'orders', timeoutMs: -1 },
        { name: 'pay', match: { pathPrefix: '/pay' }, upstream: 'paymnts', rateLimit: { capacity: 0, refillRate: 1 }, canary: { upstream: 'payments', weight: 120 } },
        { match: { path: '/x', methods: ['FETCH'] }, upstream: 'orders', auth: true, retry: { maxAttempts: 50 } },
      ],
    });
    assert.ok(issues.includes('routes[2] (pay).upstream: unknown upstream "paymnts"'), issues.join('\n'));
    assert.ok(issues.some((i) => i.startsWith('routes[1] (b).match.pathPrefix:')));
    assert.ok(issues.some((i) => i.startsWith('routes[1] (b).timeoutMs:')));
    assert.ok(issues.some((i) => i.startsWith('routes[2] (pay).rateLimit:') && i.includes('capacity')));
    assert.ok(issues.some((i) => i.startsWith('routes[2] (pay).canary.weight:')));
    assert.ok(issues.some((i) => i.startsWith('routes[3] (route-3).match.methods[0]:')));
    assert.ok(issues.some((i) => i.startsWith('routes[3] (route-3).auth: requires the top-level auth.issuers')));
    assert.ok(issues.some((i) => i.startsWith('routes[3] (route-3).retry.maxAttempts:')));
  });

  it('refuses a rewrite prefix that could not go into a request line as is', () => {
    const route = (addPrefix: string): unknown => ({ upstreams, routes: [{ name: 'r', match: { pathPrefix: '/a' }, upstream: 'orders', rewrite: { addPrefix } }] });
    assert.deepEqual(issuesOf(route('/v1/orders')), []);
    assert.deepEqual(issuesOf(route('/v1 HTTP/1.1\r\nHost: evil\r\n\r\nGET /x')), ['routes[0] (r).rewrite.addPrefix: must hold visible ASCII characters only']);
    assert.deepEqual(issuesOf(route('/v1/ü')), ['routes[0] (r).rewrite.addPrefix: must hold visible ASCII characters only']);
    assert.deepEqual(issuesOf(route('/v1?x=1')), ['routes[0] (r).rewrite.addPrefix: must not hold ? or #']);
  });

  it('refuses unknown fields, duplicate names, bad instances and a missing routes list', () => {
    assert.deepEqual(issuesOf({ upstreams }), ['routes: must be a non-empty array']);
    const issues = issuesOf({
      upstreams: { bad: { instances: ['http://127.0.0.1:1/path'] } },
      routes: [
        { name: 'x', match: {}, upstream: 'bad', timout: 5 },
        { name: 'x', match: {}, upstream: 'bad' },
      ],
    });
    assert.ok(issues.some((i) => i.startsWith('upstreams.bad.instances[0]:')));
    assert.ok(issues.includes('routes[0] (x).timout: unknown field'));
    assert.ok(issues.includes('routes[1] (x).name: duplicate route name'));
  });

  it('accepts a valid configuration and fills defaults', () => {
    const valid = validateConfig({ upstreams, routes: [{ match: { hosts: ['api.shop.local'], pathPrefix: '/orders' }, upstream: 'orders', rateLimit: { algorithm: 'sliding-window', limit: 10, windowMs: 1000 } }] });
    assert.equal(valid.routes[0]!.name, 'route-0');
    assert.equal(valid.routes[0]!.timeoutMs, 30_000);
    assert.equal(valid.routes[0]!.rule?.algorithm, 'sliding-window');
  });
});

describe('route table', () => {
  const table = new RouteTable([
    { match: { pathPrefix: '/' }, target: 'root' },
    { match: { pathPrefix: '/orders' }, target: 'orders' },
    { match: { path: '/orders/:id/items' }, target: 'items' },
    { match: { pathPrefix: '/orders', headers: { 'x-canary': 'true' } }, target: 'orders-canary' },
    { match: { hosts: ['admin.test'], pathPrefix: '/orders' }, target: 'admin-orders' },
    { match: { hosts: ['*.tenant.test'], pathPrefix: '/' }, target: 'tenant' },
    { match: { path: '/files/*', methods: ['GET'] }, target: 'files' },
  ]);
  const m = (host: string, path: string, headers: Record<string, string> = {}, method = 'GET'): string | undefined => table.match(host, method, path, headers).route;

  it('prefers the longest literal path, then header matchers, then the more specific host', () => {
    assert.equal(m('x', '/orders'), 'orders');
    assert.equal(m('x', '/orders/1'), 'orders');
    assert.equal(m('x', '/ordersx'), 'root', 'a prefix matches on a segment boundary');
    assert.equal(m('x', '/orders/1/items'), 'items');
    assert.equal(m('x', '/orders/1', { 'x-canary': 'true' }), 'orders-canary');
    assert.equal(m('admin.test', '/orders/1'), 'admin-orders');
    assert.equal(m('a.tenant.test', '/anything'), 'tenant');
    assert.equal(m('a.tenant.test', '/orders/1'), 'orders', 'a longer path wins over a host catch-all');
    assert.equal(m('tenant.test', '/x'), 'root', 'a wildcard needs a label before its suffix');
    assert.equal(m('x', '/files/a/b.txt'), 'files');
    assert.equal(m('x', '/files/a', {}, 'PUT'), 'root');
  });

  it('reports an unknown host when every route names hosts', () => {
    const hosted = new RouteTable([{ match: { hosts: ['a.test'] }, target: 'a' }]);
    assert.deepEqual(hosted.match('b.test', 'GET', '/', {}), { route: undefined, reason: 'unknown-host' });
    assert.deepEqual(hosted.match('a.test', 'GET', '/', {}), { route: 'a' });
  });
});
