/**
 * Samples a target's `/metrics` and `/slo` in the background (every
 * `intervalMs`, and on demand at phase boundaries), keeping only what the
 * report needs: request counters by route and by dependency, the resilience
 * policies' retries, breaker states and transitions, saga outcomes, and each
 * SLO's budget, burn rates and firing alerts. Several processes (the services
 * topology) are summed.
 */
import { mergeMetrics, parseMetrics, sumBy, type Metrics } from './prometheus.js';

export interface SloPoint {
  objective: number;
  sli: number;
  totalEvents: number;
  badEvents: number;
  /** Budget left over the SLO window, as a fraction (negative when overspent). */
  remainingFraction: number;
  burnRates: Record<string, number>;
}

export interface Snapshot {
  /** Wall-clock time of the sample (epoch ms). */
  at: number;
  /** Served requests by `METHOD route`, and those answered 5xx. */
  server: Record<string, number>;
  server5xx: Record<string, number>;
  /** Outgoing requests by `METHOD dependency`, and those that failed (5xx or no answer). */
  client: Record<string, number>;
  clientFailed: Record<string, number>;
  /** Resilience policies, by policy name. */
  retries: Record<string, number>;
  giveUps: Record<string, number>;
  breakerState: Record<string, number>;
  breakerTransitions: Record<string, number>;
  rejections: Record<string, number>;
  /** Saga outcomes by `type outcome` (`CreateOrder completed`). */
  sagas: Record<string, number>;
  /** SLO status by name (absent when no `/slo` answered). */
  slos: Record<string, SloPoint>;
  /** Alerts firing at the sample, as `slo/severity`. */
  firing: string[];
}

export interface AlertRecord {
  slo: string;
  severity: string;
  firedAt: number;
  resolvedAt: number | undefined;
  budgetRemaining: number;
}

interface SloStatusBody {
  name: string;
  objective: number;
  sli: number;
  budget: { totalEvents: number; badEvents: number; remainingFraction: number };
  burnRates: Record<string, number>;
}

const obj = (m: Map<string, number>): Record<string, number> => Object.fromEntries(m);

/** Extracts the report's series from one scrape. */
export function extract(metrics: Metrics, at: number): Omit<Snapshot, 'slos' | 'firing'> {
  const server = sumBy(metrics, 'bulwark_http_server_requests_total', ['method', 'route']);
  const server5xx = sumBy(metrics, 'bulwark_http_server_requests_total', ['method', 'route'], { status_class: '5xx' });
  const client = sumBy(metrics, 'bulwark_http_client_requests_total', ['method', 'dependency']);
  const clientFailed = new Map<string, number>();
  for (const cls of ['5xx', 'error']) {
    for (const [k, v] of sumBy(metrics, 'bulwark_http_client_requests_total', ['method', 'dependency'], { status_class: cls })) clientFailed.set(k, (clientFailed.get(k) ?? 0) + v);
  }
  return {
    at,
    server: obj(server),
    server5xx: obj(server5xx),
    client: obj(client),
    clientFailed: obj(clientFailed),
    retries: obj(sumBy(metrics, 'bulwark_resilience_retries_total', ['policy'])),
    giveUps: obj(sumBy(metrics, 'bulwark_resilience_retry_give_ups_total', ['policy'])),
    breakerState: obj(sumBy(metrics, 'bulwark_resilience_breaker_state', ['policy'])),
    breakerTransitions: obj(sumBy(metrics, 'bulwark_resilience_breaker_transitions_total', ['policy'])),
    rejections: obj(sumBy(metrics, 'bulwark_resilience_rejections_total', ['policy'])),
    sagas: obj(sumBy(metrics, 'bulwark_saga_finished_total', ['type', 'outcome'])),
  };
}

async function fetchText(url: string, timeoutMs: number): Promise<string> {
  const res = await fetch(url, { headers: { accept: 'text/plain, application/json' }, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
  return text;
}

export interface SamplerOptions {
  /** Base URLs serving `/metrics` (one per process). */
  metrics: readonly string[];
  /** Base URLs serving `/slo`. */
  slo: readonly string[];
  intervalMs: number;
}

export class Sampler {
  readonly samples: Snapshot[] = [];
  /** Problems met while sampling (each kind once), for the report's notes. */
  readonly notes: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private stopped = true;

  constructor(private readonly options: SamplerOptions) {}

  private note(text: string): void {
    if (!this.notes.includes(text)) this.notes.push(text);
  }

  /** Takes one sample now (also recorded in `samples`). */
  async snapshot(): Promise<Snapshot> {
    const at = Date.now();
    const timeoutMs = Math.max(2_000, this.options.intervalMs * 2);
    const scrapes = await Promise.all(
      this.options.metrics.map((base) =>
        fetchText(`${base}/metrics`, timeoutMs).then(parseMetrics, (error: unknown) => {
          this.note(`metrics from ${base} unavailable: ${error instanceof Error ? error.message : String(error)}`);
          return new Map() as Metrics;
        }),
      ),
    );
    const slos: Record<string, SloPoint> = {};
    const firing: string[] = [];
    await Promise.all(
      this.options.slo.map(async (base) => {
        try {
          const body = JSON.parse(await fetchText(`${base}/slo`, timeoutMs)) as { slos?: SloStatusBody[]; firing?: { slo: string; severity: string }[] };
          for (const s of body.slos ?? []) {
            slos[s.name] = {
              objective: s.objective,
              sli: s.sli,
              totalEvents: s.budget.totalEvents,
              badEvents: s.budget.badEvents,
              remainingFraction: s.budget.remainingFraction,
              burnRates: s.burnRates,
            };
          }
          for (const a of body.firing ?? []) firing.push(`${a.slo}/${a.severity}`);
        } catch (error) {
          this.note(`SLOs from ${base} unavailable: ${error instanceof Error ? error.message : String(error)}`);
        }
      }),
    );
    const snap: Snapshot = { ...extract(mergeMetrics(scrapes), at), slos, firing };
    this.samples.push(snap);
    return snap;
  }

  /** Samples every interval until `stop()`. */
  start(): void {
    this.stopped = false;
    const tick = (): void => {
      if (this.stopped) return;
      this.running = this.snapshot().then(
        () => undefined,
        () => undefined,
      );
      void this.running.then(() => {
        if (!this.stopped) this.timer = setTimeout(tick, this.options.intervalMs);
      });
    };
    this.timer = setTimeout(tick, this.options.intervalMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.running;
  }

  /** Every alert of the run (firing and resolved), from each `/slo/alerts`. */
  async alerts(since: number): Promise<AlertRecord[]> {
    const out: AlertRecord[] = [];
    for (const base of this.options.slo) {
      try {
        const body = JSON.parse(await fetchText(`${base}/slo/alerts`, 5_000)) as {
          firing?: AlertBody[];
          history?: AlertBody[];
        };
        // Transitions, oldest first, then the ones firing now: the last word on an alert id wins.
        const byId = new Map<string, AlertRecord>();
        for (const a of [...(body.history ?? []), ...(body.firing ?? [])]) {
          const firedAt = Date.parse(a.firedAtTime);
          if (!(firedAt >= since)) continue;
          // A resolution's wall time is not given; the engine clock's difference is.
          const resolvedAt = a.resolvedAt === undefined || a.resolvedAt === null ? undefined : firedAt + (a.resolvedAt - a.firedAt);
          const prior = byId.get(a.id);
          byId.set(a.id, { slo: a.slo, severity: a.severity, firedAt, resolvedAt: resolvedAt ?? prior?.resolvedAt, budgetRemaining: a.budgetRemaining });
        }
        out.push(...byId.values());
      } catch (error) {
        this.note(`SLO alerts from ${base} unavailable: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    return out.sort((a, b) => a.firedAt - b.firedAt);
  }
}

interface AlertBody {
  id: string;
  slo: string;
  severity: string;
  state: string;
  firedAt: number;
  firedAtTime: string;
  resolvedAt?: number | null;
  budgetRemaining: number;
}
