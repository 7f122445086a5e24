/**
 * `npm start`: a short, real demonstration of Bulwark's call policies against
 * a local HTTP server that fails on purpose. Every figure printed is counted
 * from what happened in this run (policy events and the server's own request
 * counts), nothing is canned.
 */
import {
  bulkhead,
  circuitBreaker,
  CircuitOpenError,
  deadline,
  fallback,
  pipeline,
  retry,
  RetryBudget,
  timeout,
} from '@bulwark/resilience';
import { startFlakyServer, type FlakyServer } from './flaky-server.js';
import { getJson } from './http-get.js';

const line = (text = ''): void => console.log(text);
const bold = process.stdout.isTTY ? (t: string): string => `\u001b[1m${t}\u001b[0m` : (t: string): string => t;
const title = (text: string): void => line(`\n${bold(text)}`);

async function retrySection(server: FlakyServer): Promise<void> {
  title('1. retry: full jitter, transient errors only, a shared retry budget');
  const budget = new RetryBudget({ ratio: 0.2, minRetriesPerSecond: 1 });
  const policy = retry({ maxAttempts: 4, backoff: { baseMs: 5, capMs: 50 }, budget });
  let retries = 0;
  let budgetRefusals = 0;
  policy.on('retry', () => retries++);
  policy.on('budgetExhausted', () => budgetRefusals++);
  const phase = async (failureRate: number, label: string): Promise<void> => {
    server.state.failureRate = failureRate;
    retries = 0;
    budgetRefusals = 0;
    const before = server.state.requests['/flaky'] ?? 0;
    let ok = 0;
    let failed = 0;
    for (let i = 0; i < 100; i++) {
      await policy.execute((ctx) => getJson(`${server.url}/flaky`, ctx)).then(
        () => ok++,
        () => failed++,
      );
    }
    const sent = (server.state.requests['/flaky'] ?? 0) - before;
    line(`   ${label}: 100 calls -> ${ok} succeeded, ${failed} failed; ${retries} retries, ${budgetRefusals} refused by the budget; ${(sent / 100).toFixed(2)} requests per call`);
  };
  await phase(0.3, '30% of requests fail with 503');
  await phase(1, 'full outage, every request fails');
  line('   retries hide a partial failure, and the budget keeps them from tripling the load in an outage (4 attempts would be 4.00)');
}

async function timeoutSection(server: FlakyServer): Promise<void> {
  title('2. timeout per attempt inside a total deadline');
  const policy = pipeline({
    deadline: deadline(2_000),
    retry: retry({ maxAttempts: 3, backoff: { baseMs: 5, capMs: 20 } }),
    timeout: timeout(250),
  });
  let timeouts = 0;
  (policy.policies[2] as ReturnType<typeof timeout>).on('timeout', () => timeouts++);
  let ok = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: 40 }, () =>
      policy.execute((ctx) => getJson(`${server.url}/hang`, ctx)).then(
        () => ok++,
        () => failed++,
      ),
    ),
  );
  line(`   server never answers 20% of requests; 40 calls -> ${ok} succeeded, ${failed} failed`);
  line(`   ${timeouts} attempts were cut off at 250 ms (their requests aborted through ctx.signal) and retried; ${server.state.requests['/hang']} requests in all`);
}

async function breakerSection(server: FlakyServer): Promise<void> {
  title('3. circuit breaker: open on failures, fail fast, probe, close');
  const breaker = circuitBreaker({ minimumCalls: 10, failureRateThreshold: 50, openDuration: { baseMs: 200 }, halfOpenCalls: 2 });
  const transitions: string[] = [];
  breaker.on('stateChange', (e) => transitions.push(`${e.from} -> ${e.to}`));
  const tally = { ok: 0, failed: 0, fastFailed: 0 };
  const callOnce = (): Promise<void> =>
    breaker.execute((ctx) => getJson(`${server.url}/down`, ctx)).then(
      () => void tally.ok++,
      (error: unknown) => void (error instanceof CircuitOpenError ? tally.fastFailed++ : tally.failed++),
    );
  server.state.down = true;
  for (let i = 0; i < 40; i++) await callOnce();
  const reachedWhileDown = server.state.requests['/down'] ?? 0;
  server.state.down = false;
  await new Promise((resolve) => setTimeout(resolve, 250));
  for (let i = 0; i < 10; i++) await callOnce();
  line(`   dependency down for 40 calls: ${reachedWhileDown} reached it, ${tally.fastFailed} failed fast without a request`);
  line(`   after recovery: ${tally.ok} succeeded; transitions: ${transitions.join(', ')}`);
}

async function bulkheadSection(server: FlakyServer): Promise<void> {
  title('4. bulkhead and fallback: a slow dependency keeps to its own slots');
  server.state.slowMs = 100;
  const recommendations = pipeline({
    fallback: fallback(() => ({ items: [], degraded: true })),
    bulkhead: bulkhead({ maxConcurrent: 5, maxQueue: 5, maxQueueWaitMs: 150 }),
    timeout: timeout(500),
  });
  let rejected = 0;
  (recommendations.policies[1] as ReturnType<typeof bulkhead>).on('rejected', () => rejected++);
  let degraded = 0;
  let fresh = 0;
  await Promise.all(
    Array.from({ length: 30 }, () =>
      recommendations
        .execute((ctx) => getJson<{ ok?: boolean; degraded?: boolean }>(`${server.url}/slow`, ctx))
        .then((r) => (r.degraded === true ? degraded++ : fresh++)),
    ),
  );
  line(`   30 concurrent calls, 5 slots + 5 queued: ${fresh} answered, ${rejected} refused by the bulkhead and served the fallback (${degraded} degraded)`);
  line(`   the slow dependency saw at most ${server.state.maxInFlight} requests at once (${server.state.requests['/slow']} in all)`);
}

async function deadlineSection(server: FlakyServer): Promise<void> {
  title('5. deadline propagation across HTTP');
  const policy = deadline(800);
  const answer = await policy.execute((ctx) => getJson<{ receivedMs: number }>(`${server.url}/budget`, ctx));
  line(`   caller's budget 800 ms -> the server was told it had ${answer.receivedMs} ms (after its 5 ms margin)`);
}

const started = performance.now();
line('Bulwark call policies, live against a local flaky server');
const server = await startFlakyServer();
line(`flaky server on ${server.url}`);
try {
  await retrySection(server);
  await timeoutSection(server);
  await breakerSection(server);
  await bulkheadSection(server);
  await deadlineSection(server);
} finally {
  await server.close();
}
line(`\ndone in ${Math.round(performance.now() - started)} ms. Next: npm test, npm run bench:resilience`);
