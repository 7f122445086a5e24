/**
 * The load generator's contract (issue #9). `runLoad` (./load.ts) implements
 * it; the scenario runner and the experiments consume it.
 *
 * Open model: arrivals are scheduled at the offered rate whatever the system
 * does, and every latency is measured from the arrival's *intended* time, so
 * a slow answer cannot hold back the next arrival (no coordinated omission).
 * An arrival that finds `maxInFlight` requests already outstanding is not
 * delayed: it is counted as `dropped` (a failure the generator saw) and the
 * schedule goes on.
 */

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** One request the workload asks for. */
export interface RequestSpec {
  method: HttpMethod;
  /** Path and query on the target, e.g. `/api/orders`. */
  path: string;
  headers?: Record<string, string>;
  /** A string is sent as is; anything else as JSON (with `content-type: application/json`). */
  body?: unknown;
  /** A label for per-kind statistics, e.g. `place-order`. Default `${method} ${path without query}`. */
  kind?: string;
}

export interface WorkloadContext {
  /** Index of this arrival in the run (0, 1, 2, ...). */
  index: number;
  /** The phase this arrival belongs to. */
  phase: string;
  /** A seeded random source (the run's `seed`): the same seed gives the same sequence of draws. */
  random: () => number;
}

/**
 * What to send for each arrival. Called at the arrival's time; may be async
 * (its time counts in the request's latency).
 */
export type Workload = (ctx: WorkloadContext) => RequestSpec | Promise<RequestSpec>;

/** An answer the workload may classify (default: 2xx and 3xx succeed). */
export interface Answer {
  status: number;
  kind: string;
  headers: Record<string, string | string[] | undefined>;
  /** The body as text (responses are read fully; workloads send small requests). */
  body: string;
  /**
   * The request this answers, as the workload returned it (runLoad always
   * sets it), so a classifier can tell requests of one kind apart, e.g. by
   * their `Idempotency-Key` or token.
   */
  request?: RequestSpec;
}

export interface LoadPhase {
  name: string;
  durationMs: number;
  /** Offered arrivals per second at the phase's start. */
  rate: number;
  /** When set, the rate moves linearly from `rate` to `rateTo` over the phase (a ramp). */
  rateTo?: number;
}

export interface Progress {
  phase: string;
  phaseIndex: number;
  /** Milliseconds since the run started. */
  elapsedMs: number;
  /** Offered and achieved (answered) rates over the last interval, per second. */
  offeredRate: number;
  achievedRate: number;
  /** Failures (non-success answers, errors, timeouts, drops) over the last interval. */
  errors: number;
  inFlight: number;
  /** p99 of latencies completed in the last interval, ms. */
  p99Ms: number;
}

export interface LoadOptions {
  /** Origin of the target, e.g. `http://127.0.0.1:3000`. Only loopback targets are accepted (LoadTargetError otherwise). */
  target: string;
  phases: readonly LoadPhase[];
  workload: Workload;
  /** Outstanding requests at most; arrivals beyond are dropped. Default 1,000. */
  maxInFlight?: number;
  /** Connections to the target (undici pool). Default 64. */
  connections?: number;
  /** Per-request timeout, ms; a request still outstanding then is aborted and counted `timedOut`. Default 10,000. */
  timeoutMs?: number;
  /** Stop scheduling after this many arrivals in the whole run. Default unbounded (the phases' durations bound the run). */
  maxRequests?: number;
  /** Highest offered rate accepted (LoadPlanError above it). Default 5,000/s. */
  maxRate?: number;
  /** Seed of `WorkloadContext.random`. Default 1. */
  seed?: number;
  /** Success classification. Default: status 200–399. */
  isSuccess?: (answer: Answer) => boolean;
  /** Width of a timeline bucket, ms. Default 1,000. */
  intervalMs?: number;
  /**
   * Live progress: `true` writes one line per interval to stderr (rewritten in
   * place on a TTY); a function receives each interval's figures instead.
   * Default false.
   */
  progress?: boolean | ((progress: Progress) => void);
  /** Called as each phase starts, before its first arrival (the scenario runner switches faults here); awaited. */
  onPhase?: (phase: LoadPhase, index: number) => void | Promise<void>;
  /** Aborts the run: no further arrivals; outstanding requests are awaited (up to `timeoutMs`). */
  signal?: AbortSignal;
}

/** Latencies in milliseconds, from HDR histograms (3 significant digits). */
export interface LatencySummary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  p999: number;
  max: number;
}

export interface KindStats {
  sent: number;
  ok: number;
  failed: number;
  /** Latency of every answered request of the kind (success or not). */
  latency: LatencySummary;
}

export interface PhaseStats {
  name: string;
  /** Start relative to the run's start, ms. */
  startMs: number;
  durationMs: number;
  /** Arrivals scheduled (the offered load) and their mean rate per second. */
  scheduled: number;
  offeredRate: number;
  /** Requests put on the wire (scheduled minus dropped). */
  sent: number;
  /** Requests answered or errored (sent minus those still outstanding at the end). */
  completed: number;
  ok: number;
  /** Every non-success: bad status, network error, timeout, drop. */
  failed: number;
  dropped: number;
  timedOut: number;
  /** Network errors (no answer), by error code, e.g. `ECONNRESET`, `UND_ERR_SOCKET`. */
  networkErrors: Record<string, number>;
  /** Answers by status code, e.g. `{ "202": 990, "503": 10 }`. */
  statuses: Record<string, number>;
  /** Successful answers per second of the phase. */
  goodput: number;
  /** Answers (success or not) per second of the phase. */
  achievedRate: number;
  /** failed / scheduled. */
  errorRate: number;
  /** Latency of every completed request, from its intended start (failures included). */
  latency: LatencySummary;
  /** Latency of successful requests only. */
  okLatency: LatencySummary;
  byKind: Record<string, KindStats>;
  /** How late the scheduler issued this phase's arrivals after their intended times, ms (see LoadResult.schedulerLag). */
  schedulerLag?: LatencySummary;
}

/** One timeline bucket (`intervalMs` wide), by completion time. */
export interface TimelinePoint {
  /** Bucket start relative to the run's start, ms. */
  tMs: number;
  /** The phase running at the bucket's start (the last phase during the drain after it). */
  phase: string;
  /** Arrivals whose intended time falls in the bucket. */
  scheduled: number;
  /** Completions in the bucket: successes, and failures (drops included). */
  ok: number;
  failed: number;
  /** Dropped arrivals (also counted in `failed`). */
  dropped: number;
  /** Latency percentiles (ms) of the requests completed in the bucket. */
  p50: number;
  p99: number;
}

export interface LoadResult {
  target: string;
  /** ISO time the run started. */
  startedAt: string;
  durationMs: number;
  seed: number;
  phases: PhaseStats[];
  /** All phases together. */
  total: PhaseStats;
  timeline: TimelinePoint[];
  /**
   * How late the scheduler issued arrivals after their intended times, ms
   * (every arrival, drops included). Already part of every latency; a p99
   * here near the latencies' p99 says the generator, not the target, was
   * the bottleneck. Optional: added after the first version of the contract.
   */
  schedulerLag?: LatencySummary;
}
