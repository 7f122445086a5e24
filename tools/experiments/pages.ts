/**
 * The prose of each experiment's page in docs/experiments/ (see ./docs.ts):
 * expectation, setup, and a comparison with the published figures written
 * from the run's own figures, so it says where they agree and where not.
 */
import type { AmplificationResult } from './amplification.js';
import type { BulkheadPhase, BulkheadResult } from './bulkhead.js';
import type { HedgingResult } from './hedging.js';
import type { JitterResult, JitterRow } from './jitter.js';
import type { MetastablePhase, MetastableResult, MetastableRow } from './metastable.js';
import type { ExperimentDoc } from './registry.js';

const pct = (x: number, digits = 0): string => `${(x * 100).toFixed(digits)} %`;
const times = (x: number): string => `${x >= 10 ? x.toFixed(0) : x.toFixed(1)}×`;

export const jitterDoc: ExperimentDoc<JitterResult> = {
  title: 'contending clients with backoff and jitter',
  expectation: `
Marc Brooker, ["Exponential Backoff And Jitter"](https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/)
(AWS Architecture Blog, 2015): with no jitter, the losers of each round collide again in lockstep, so it makes by far the
most calls and takes by far the longest; full and decorrelated jitter make far fewer calls; equal jitter does about the work
of full jitter but takes longer ("Equal Jitter is the loser… slightly more work than Full Jitter, and takes much longer");
full vs decorrelated is close, full doing a little less work.`,
  headline(result) {
    const by = Object.fromEntries(result.rows.map((r) => [r.jitter, r])) as Record<JitterRow['jitter'], JitterRow | undefined>;
    const { none, equal, full } = by;
    if (none === undefined || equal === undefined || full === undefined) return 'Not every strategy ran.';
    const agrees = none.calls > equal.calls && none.calls > full.calls && equal.completionMs > full.completionMs;
    return (
      `No jitter made ${times(none.calls / full.calls)} the calls and took ${times(none.completionMs / full.completionMs)} the time of full jitter; ` +
      `equal jitter did about the work of full (${pct(equal.calls / full.calls - 1)} more) but took ${pct(equal.completionMs / full.completionMs - 1)} longer — ${agrees ? 'as Brooker found' : 'unlike Brooker'}.`
    );
  },
  setup: `
Brooker's OCC simulation: one row with a version number; each of N clients (default 100) must update it once by reading the
version and writing conditionally on it; a write fails when another client wrote in between. Every message crosses a network
with delay |normal(10 ms, 2 ms)|. Each client runs its read-then-write inside \`@bulwark/resilience\`'s \`retry\` (up to 1 000
attempts) with the library's own \`Backoff\` — exponential, base 5 ms, cap 2 s — and jitter \`none\`, \`equal\`, \`full\` or
\`decorrelated\`. Time is a \`VirtualClock\`, randomness \`seededRandom\`: deterministic per seed, no real waiting. Figures are
means over \`runs\` seeds (default 10).`,
  comparison(result) {
    const by = Object.fromEntries(result.rows.map((r) => [r.jitter, r])) as Record<JitterRow['jitter'], JitterRow | undefined>;
    const { none, equal, full, decorrelated } = by;
    if (none === undefined || equal === undefined || full === undefined || decorrelated === undefined) return 'Not every strategy ran: no comparison.';
    const jittered = [equal, full, decorrelated];
    const mostWork = jittered.every((r) => none.calls > r.calls) && jittered.every((r) => none.completionMs > r.completionMs);
    const equalWork = equal.calls / full.calls - 1;
    const equalTime = equal.completionMs / full.completionMs - 1;
    const decorrelatedWork = decorrelated.calls / full.calls - 1;
    return [
      `- No jitter: ${times(none.calls / full.calls)} the calls of full jitter and ${times(none.completionMs / full.completionMs)} the time — ` +
        `${mostWork ? 'by far the most work and the longest, as Brooker found' : '**not** the worst on every count, unlike Brooker'}.`,
      `- Equal vs full jitter: ${equalWork >= 0 ? `${pct(equalWork)} more` : `${pct(-equalWork)} less`} work and ${equalTime >= 0 ? `${pct(equalTime)} longer` : `${pct(-equalTime)} shorter`} — ` +
        `${equalTime > 0 && Math.abs(equalWork) < 0.2 ? 'agrees: about the same work, and slower' : 'differs from Brooker (about the same work, and much slower)'}.`,
      `- Decorrelated vs full jitter: ${Math.abs(decorrelatedWork) < 0.005 ? 'the same work' : decorrelatedWork > 0 ? `${pct(decorrelatedWork)} more work` : `${pct(-decorrelatedWork)} less work`} — ` +
        `${decorrelatedWork >= 0.005 ? 'full does less work, as in Brooker\'s chart' : 'not the small edge of full jitter in Brooker\'s chart'}; completion ${pct(Math.abs(decorrelated.completionMs / full.completionMs - 1))} ${decorrelated.completionMs >= full.completionMs ? 'longer' : 'shorter'}.`,
      `- Brooker's figures are charts, not tables; the ratio between no jitter and the jittered strategies grows with the number of clients (here ${result.clients}).`,
    ].join('\n');
  },
};

export const amplificationDoc: ExperimentDoc<AmplificationResult> = {
  title: 'retries multiply down a call chain',
  expectation: `
Retries at several layers multiply: the attempts reaching the bottom of a chain are the product of every layer's attempts
(Beyer et al., *Site Reliability Engineering*, O'Reilly 2016, "Addressing Cascading Failures"), here 3 × 3 × 3 = **27**
calls at C per user request. Retrying at one layer only gives **3**; a retry budget (Finagle's \`RetryBudget\`, gRPC's retry
throttling) caps retries at a share of the recent requests, here 10 % plus a floor: about **1.1**.`,
  headline(result) {
    const per = (c: string): string => String(result.rows.find((r) => r.config === c)?.perRequest ?? '—');
    return `Calls reaching C per failing user request: ${per('every-layer')} with retries at every layer, ${per('top-only')} at the top only, ${per('top-budget')} with a 10 % retry budget — the product of the attempts, and within the budget, as expected.`;
  },
  setup: `
Three real \`node:http\` servers on ephemeral ports form the chain user → A → B → C. Every caller calls the next hop through a
\`@bulwark/resilience\` pipeline (\`retry\` with full jitter, 1–8 ms, then a per-attempt \`timeout\`); a hop whose call fails
answers 503 itself, so the failure stays transient all the way up. A warm-up of successful requests (default 20), then C
answers 503 to everything and \`requests\` user requests (default 100, 8 in flight) are measured. Configurations:
\`every-layer\` (3 attempts in the user's client, A and B), \`top-only\` (3 attempts in the user's client),
\`top-budget\` (as top-only with a shared \`RetryBudget({ ratio: 0.1, minRetriesPerSecond: 0.1 })\`).`,
  comparison(result) {
    const expected: Record<string, number> = { 'every-layer': result.maxAttempts ** 3, 'top-only': result.maxAttempts };
    return result.rows
      .map((r) => {
        if (r.config === 'top-budget') {
          return `- \`top-budget\`: ${r.perRequest} calls at C per request, bound ${r.bound ?? '—'} — ${r.bound !== undefined && r.perRequest <= r.bound ? 'within the budget, as expected' : '**above** the bound'}.`;
        }
        const want = expected[r.config] ?? 0;
        return `- \`${r.config}\`: ${r.perRequest} calls at C per request, expected ${want} — ${r.perRequest === want ? 'exactly the product of the attempts' : '**differs**'}.`;
      })
      .join('\n');
  },
};

const phase = (row: MetastableRow | undefined, name: string): MetastablePhase | undefined => row?.phases.find((p) => p.name === name);

export const metastableDoc: ExperimentDoc<MetastableResult> = {
  title: 'a retry storm that outlives its trigger',
  expectation: `
Bronson, Aghayev, Charapko and Zhu, ["Metastable Failures in Distributed Systems"](https://sigops.org/s/conferences/hotos/2021/papers/hotos21-s11-bronson.pdf)
(HotOS 2021): a system running near (but below) its capacity can be pushed by a short trigger into a bad state that a
*sustaining effect* keeps it in after the trigger is gone — most often retries: requests time out, are retried, the retries
add load, so more time out. The paper's claim is qualitative (no figures to match). Expected here: with **naive retries**
goodput does not come back after the outage (or much later), and the dependency keeps receiving about as many calls per
request as there are attempts; with a **retry budget and a circuit breaker** it comes back within a few seconds. A
**timeout alone** (no retries) also recovers, but only once the backlog the outage left has drained.`,
  headline(result) {
    const row = (c: string): MetastableRow | undefined => result.rows.find((r) => r.config === c);
    const rec = (r: MetastableRow | undefined): string => (r === undefined ? 'did not run' : r.recoveryS === null ? `never recovered in ${result.afterS} s` : `recovered after ${r.recoveryS} s`);
    const naive = row('naive');
    return (
      `After a ${result.outageS} s outage at ${Math.round((100 * result.rate) / result.capacity)} % load, naive retries ${rec(naive)} ` +
      `(${phase(naive, 'after')?.amplification ?? '—'} calls per request, ${pct(phase(naive, 'after')?.wastedShare ?? 0)} of the dependency's work wasted), ` +
      `timeout only ${rec(row('timeout-only'))}, retry budget + breaker ${rec(row('budget-breaker'))} — ` +
      `${naive?.recoveryS === null && row('budget-breaker')?.recoveryS !== null ? 'the retry-sustained metastable failure of Bronson et al., and its cure' : 'see the comparison'}.`
    );
  },
  setup: `
- **Dependency** — its own process on a loopback port: \`workers\` requests served at a time, \`serviceMs\` each (a timer:
  capacity \`workers / serviceMs\`, by default 8 / 40 ms = 200 requests/s), the rest in one FIFO queue (up to 5 000). It keeps
  working on requests whose callers already gave up: they are served and their answers thrown away (*wasted*). During the
  **outage** every worker stalls (a hang: requests are still accepted and queued).
- **Front** — a \`node:http\` service calling the dependency once per user request through a \`@bulwark/resilience\` pipeline
  with a 200 ms per-attempt \`timeout\` (an abandoned attempt is aborted, which closes its connection):
  \`naive\` = \`retry\` with 3 attempts and a constant 10 ms pause; \`timeout-only\` = no retry;
  \`budget-breaker\` = \`retry\` with 3 attempts, full-jitter backoff 20 ms–1 s and a \`RetryBudget\` (10 %, floor 1/s),
  and a \`circuitBreaker\` (last 20 calls, opens at 50 % failures after 10, 1 s open, 3 probes).
- **Load** — the open-model generator (tools/load) at 150 user requests/s (75 % of capacity): \`baseline\` 10 s,
  \`outage\` 5 s, \`after\` 30 s. Each configuration gets a fresh dependency process and front.
- **Time to recover**: from the outage's end to the start of the first of 3 one-second buckets in a row whose goodput is at
  least 90 % of the baseline's; \`never\` (null) if that does not happen before the run ends. **Amplification**: calls the
  dependency received ÷ user requests, per phase.`,
  comparison(result) {
    const naive = result.rows.find((r) => r.config === 'naive');
    const guarded = result.rows.find((r) => r.config === 'budget-breaker');
    const control = result.rows.find((r) => r.config === 'timeout-only');
    const lines: string[] = [];
    if (naive !== undefined) {
      const after = phase(naive, 'after');
      lines.push(
        naive.recoveryS === null
          ? `- **Naive retries: metastable, as the paper describes.** Goodput never came back in the ${result.afterS} s after the outage ` +
              `(last 5 s: ${pct(naive.finalShare)} of the baseline) although the load (${result.rate}/s) was back under the capacity (${result.capacity}/s). ` +
              `The dependency received ${after?.amplification ?? '—'} calls per user request and ${pct(after?.wastedShare ?? 0)} of what it finished was for callers that had already given up: ` +
              `it ran at full capacity doing nothing useful. The queue reached ${naive.maxQueue}.`
          : `- Naive retries recovered ${naive.recoveryS} s after the outage (amplification after: ${after?.amplification ?? '—'}) — ` +
              `${guarded?.recoveryS !== null && guarded !== undefined && naive.recoveryS > (guarded.recoveryS ?? 0) ? 'later than with a budget and a breaker' : '**not** the metastable failure expected'}.`,
      );
    }
    if (control !== undefined) {
      lines.push(
        `- **Timeout only** (no retries): ${control.recoveryS === null ? `did not recover within ${result.afterS} s` : `recovered after ${control.recoveryS} s`} — ` +
          `its backlog (up to ${control.maxQueue} queued) drains at capacity − load = ${Math.round(result.capacity - result.rate)}/s, and until it has, every request waits past its timeout. ` +
          'Without the retries nothing adds load, so the state is not self-sustaining: the retries are the sustaining effect.',
      );
    }
    if (guarded !== undefined) {
      const outage = phase(guarded, 'outage');
      lines.push(
        `- **Retry budget + circuit breaker**: ${guarded.recoveryS === null ? `**did not recover** within ${result.afterS} s` : `recovered ${guarded.recoveryS} s after the outage`}; ` +
          `the breaker opened ${guarded.breakerOpens} time(s), so during the outage the dependency received ${outage?.amplification ?? '—'} calls per user request instead of piling up a backlog, ` +
          `and the retries stayed within the budget (${guarded.retries} in the whole run).`,
      );
    }
    lines.push(
      '- Not tried here, and known to break the loop on the dependency\'s side: dropping requests whose caller has gone or whose deadline has passed ' +
        '(the `bulwark-deadline-ms` header makes that possible), or bounding queueing time (Facebook\'s controlled-delay queues and adaptive LIFO, ' +
        'Maurer, "Fail at Scale", ACM Queue 2015).',
    );
    return lines.join('\n');
  },
};

export const hedgingDoc: ExperimentDoc<HedgingResult> = {
  title: 'hedged requests against a heavy tail',
  expectation: `
Dean and Barroso, ["The Tail at Scale"](https://research.google/pubs/the-tail-at-scale/) (CACM 56(2), 2013): in a Google
benchmark reading 1 000 keys from a BigTable spread over 100 servers, sending a hedged request after 10 ms cut the
99.9th-percentile latency from **1 800 ms to 74 ms** while sending just **2 % more requests**; deferring the hedge until a
request has been outstanding longer than the **95th-percentile** latency limits the extra load to about **5 %**. Expected
here: p99 and p99.9 drop sharply, for a few per cent more calls, within the hedge budget.`,
  headline(result) {
    const plain = result.rows.find((r) => r.config === 'plain');
    const hedged = result.rows.find((r) => r.config === 'hedged');
    if (plain === undefined || hedged === undefined) return 'Both configurations are needed.';
    return (
      `Hedging at the observed p95 cut p99.9 from ${plain.latency.p999} to ${hedged.latency.p999} ms and p99 from ${plain.latency.p99} to ${hedged.latency.p99} ms ` +
      `for ${pct(hedged.load - 1, 1)} more calls (Dean & Barroso: p99.9 1 800 → 74 ms for 2 % more).`
    );
  },
  setup: `
- **Dependency** — its own process on a loopback port; each request's latency is drawn from \`seededRandom\`, independently per
  request: uniform in 1–6 ms, except 1.5 % uniform in 100–2 000 ms (slowness from transient causes on the server — a pause,
  a compaction — which a second copy of the request does not share). A request whose caller gives up is dropped.
- **Front** — a \`node:http\` service calling the dependency once per user request through \`@bulwark/resilience\`:
  \`plain\` = a 5 s \`timeout\`; \`hedged\` = the same plus \`hedge\` with its delay at the observed p95
  (\`{ quantile: 0.95, initialMs: 10, minSamples: 50 }\`, a \`LatencyQuantile\` of recent calls), one hedge at most, and a
  \`HedgeBudget\` of 10 % of requests plus 1/s. The first answer wins; the loser is aborted.
- **Load** — the open-model generator at 200 requests/s: 2 s of warm-up (the quantile learns; not measured), then 30 s measured.
- **Extra load** — calls the dependency received ÷ user requests, in the measured phase.`,
  comparison(result) {
    const plain = result.rows.find((r) => r.config === 'plain');
    const hedged = result.rows.find((r) => r.config === 'hedged');
    if (plain === undefined || hedged === undefined) return 'Both configurations are needed for a comparison.';
    const extra = hedged.load - 1;
    const hedgeShare = hedged.hedges / Math.max(1, hedged.requests);
    return [
      `- **p99.9: ${plain.latency.p999} ms → ${hedged.latency.p999} ms** (${times(plain.latency.p999 / Math.max(0.001, hedged.latency.p999))} lower) for **${pct(extra, 1)} more calls** ` +
        `(Dean & Barroso: 1 800 ms → 74 ms, 24× lower, for 2 % more). p99: ${plain.latency.p99} ms → ${hedged.latency.p99} ms; p50: ${plain.latency.p50} ms → ${hedged.latency.p50} ms.`,
      `- ${hedged.latency.p999 < plain.latency.p999 / 5 && extra <= 0.1 ? 'Agrees: the tail collapses to about the hedge delay plus one fast answer, for a few per cent more load.' : '**Does not reproduce** the sharp drop for a small extra load.'} ` +
        `The budget allowed up to ${hedged.bound ?? '—'} calls per request; ${hedged.hedges} hedges were launched (${pct(hedgeShare, 1)} of requests; some were cancelled before they reached the dependency, when the primary answered at once), ${hedged.hedgesWon} of them won.`,
      `- Hedging at the observed p95 (${hedged.hedgeDelayMs ?? '—'} ms at the end) sent hedges for ${pct(hedgeShare, 1)} of requests, not the ~5 % the paper's rule of thumb gives: ` +
        'the fast answers end abruptly at about 6 ms (plus the hop), so most calls just above the p95 finish before the hedge timer fires ' +
        '(Node timers fire on whole milliseconds, never early), and what is left is close to the slow share (1.5 %). With a smooth tail the share would approach 5 %.',
      '- Where the settings differ: the paper hedges the sub-requests of a 1 000-key fan-out over 100 servers and reports the whole read; ' +
        'here one call per request to one dependency whose slowness is independent per request — the best case for hedging. ' +
        'Slowness shared by both copies (an overloaded dependency, a slow request) is not cut by hedging, and then the budget is what keeps the hedges from adding to the overload.',
    ].join('\n');
  },
};

const phaseOf = (result: BulkheadResult, config: string, name: string): BulkheadPhase | undefined => result.rows.find((r) => r.config === config)?.phases.find((p) => p.name === name);

export const bulkheadDoc: ExperimentDoc<BulkheadResult> = {
  title: "the product page while recommendations hang",
  expectation: `
The bulkhead pattern (Nygard, *Release It!*; Netflix Hystrix's thread pools per dependency): a dependency that hangs holds
every worker of a shared pool, so calls to healthy dependencies queue behind it and the whole page slows down or fails;
separate bulkheads confine the hang to its own slots. Expected (issue #9): **with bulkheads** the product page's p99 stays near
its normal latency — recommendations fall back fast — while **without** it rises to the recommendations timeout.`,
  headline(result) {
    const withB = phaseOf(result, 'bulkheads', 'hang');
    const without = phaseOf(result, 'no-bulkheads', 'hang');
    if (withB === undefined || without === undefined) return 'Both configurations are needed.';
    const t = result.timeoutMs;
    return (
      `While recommendations hang, the page p99 was ${withB.p99} ms with bulkheads and ${without.p99} ms without (timeout ${t} ms) — ` +
      `${withB.p99 < 0.5 * t ? 'as expected' : '**not** near normal with bulkheads, contrary to the expectation'}; bulkheads cut the pages that waited for the timeout ` +
      `(${pct(withB.slowShare, 1)} vs ${pct(without.slowShare, 1)}) and the hung calls (${withB.dependencies.recommendations.maxInFlight} vs ${without.dependencies.recommendations.maxInFlight}); the other dependencies were unaffected either way.`
    );
  },
  setup: `
- A real **monolith shop** (apps/shop, started as its tests start it: a temp dir, an ephemeral port, in this process).
  \`GET /api/product-page/:sku\` calls catalog, pricing, inventory and recommendations over loopback, each through its own
  \`bulkhead\` (queue = slots, 100 ms queue wait) and its own HTTP client: its own undici pool of 32 connections, a 1 s
  per-attempt timeout (\`productPage.timeoutMs\`), a circuit breaker with the client's defaults (last 100 calls, opens at 50 %
  after 20, 30 s open). Recommendations fall back to the last good answer for the user, else an empty list.
- \`bulkheads\`: the shop's default slots (catalog 20, pricing 20, inventory 10, recommendations 5).
  \`no-bulkheads\`: the same code with 10 000 slots each, which never bind.
- **Load**: the open-model generator at 50 pages/s over six SKUs: 3 s warm-up (not reported), \`normal\` 10 s (recommendations
  answer in 30 ms), \`hang\` 20 s (every recommendations call hangs: the fault admin API's inbound hang on the recommendations
  module when the shop has it, else a second shop whose recommendations take 3 × the page timeout).
- The page's calls to each dependency are timed in the shop's process from undici's diagnostics channels, from dispatch on a
  connection to the last byte or error; the table also gives the most calls in flight at once (below a pool's 32 connections,
  no call waited for one) and the event loop's p99 delay.`,
  comparison(result) {
    const t = result.timeoutMs;
    const withB = phaseOf(result, 'bulkheads', 'hang');
    const without = phaseOf(result, 'no-bulkheads', 'hang');
    const normalWith = phaseOf(result, 'bulkheads', 'normal');
    const normalWithout = phaseOf(result, 'no-bulkheads', 'normal');
    if (withB === undefined || without === undefined) return 'Both configurations are needed for a comparison.';
    const others = (p: BulkheadPhase | undefined): string => (p === undefined ? '—' : `${p.dependencies.catalog.p99} / ${p.dependencies.pricing.p99} / ${p.dependencies.inventory.p99} ms`);
    const nearNormal = withB.p99 < 0.5 * t;
    return [
      `- **Page p99 while recommendations hang: ${withB.p99} ms with bulkheads, ${without.p99} ms without** (normal: ${normalWith?.p99 ?? '—'} / ${normalWithout?.p99 ?? '—'} ms; timeout ${t} ms). ` +
        (nearNormal
          ? 'With bulkheads the p99 stayed well below the timeout, as expected.'
          : '**Disagrees with the expectation**: with bulkheads the p99 is at the timeout too. A bulkhead refuses the calls beyond its slots, ' +
            `but the calls that *get* a slot still wait the full timeout — ${result.slots} slots / ${t / 1000} s = ${result.slots / (t / 1000)} pages per second — ` +
            `which is ${pct(result.slots / (t / 1000) / result.rate)} of ${result.rate} pages/s, above the 1 % a p99 can hide.`),
      `- What the bulkhead does change: the pages that waited for the recommendations timeout, ${pct(withB.slowShare, 1)} with bulkheads vs ${pct(without.slowShare, 1)} without ` +
        `(one per recommendations call that timed out: ${withB.dependencies.recommendations.calls} vs ${without.dependencies.recommendations.calls} calls), and the recommendations calls in flight, ` +
        `at most ${withB.dependencies.recommendations.maxInFlight} vs ${without.dependencies.recommendations.maxInFlight} (without bulkheads the recommendations client's own pool of 32 connections is the limit, the rest wait in it). ` +
        `Page p90: ${withB.p90} ms with bulkheads vs ${without.p90} ms without; with bulkheads, while the breaker is still closed, a page whose recommendations call finds the ` +
        `${result.slots} slots taken waits in the bulkhead's queue for up to its 100 ms queue wait before it falls back — the bulkhead trades a few long waits for many short ones.`,
      `- **The other dependencies were not affected either way**: p99 of catalog / pricing / inventory calls while recommendations hang ${others(withB)} with bulkheads, ${others(without)} without ` +
        `(normal: ${others(normalWith)} and ${others(normalWithout)}), at most ${without.dependencies.catalog.maxInFlight} / ${without.dependencies.pricing.maxInFlight} / ${without.dependencies.inventory.maxInFlight} in flight. ` +
        'In Node there is no shared thread pool for a hung call to hold: each client has its own connection pool, and a hung call costs the event loop nothing ' +
        `(its p99 delay: ${withB.loopDelayP99} / ${without.loopDelayP99} ms in the hang). The seeds' thread-pool story does not carry over; what a bulkhead bounds here is ` +
        'the number of hung calls (sockets, memory, pages waiting), not the latency of the other calls.',
      '- The circuit breaker of the recommendations client, not the bulkhead, is what brings the page back to its normal latency during a long hang: it opens once half of its ' +
        'window of the last 100 calls has failed — after a healthy spell, 50 failures — and from then on every call falls back at once. With bulkheads only the slots\' calls fail, ' +
        `${result.slots / (t / 1000)} per second, so it opens about ${Math.round(50 / (result.slots / (t / 1000)))} s into the hang instead of about ${Math.round(t / 1000 + 50 / result.rate)} s without ` +
        '(see the p99 chart): over a long hang, the bulkheaded page waits for the timeout for longer.',
      `- For a p99 near normal during the hang, the pages that wait must stay under 1 %: a rate above ${Math.round((100 * result.slots) / (t / 1000))} pages/s with these slots and timeout, ` +
        'or a recommendations timeout far shorter than the page\'s 1 s (the shop uses one `productPage.timeoutMs` for all four dependencies), or fewer slots and no queue for an optional dependency.',
    ].join('\n');
  },
};
