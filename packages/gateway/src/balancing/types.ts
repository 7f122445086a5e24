/**
 * The contract between the proxy (routing, policies, forwarding) and the
 * upstream layer (discovery, health, outlier ejection, load balancing, shuffle
 * sharding). The proxy asks an `UpstreamService` for an instance per attempt
 * and reports how the attempt went; the upstream layer decides who is healthy
 * and who gets the next request.
 */

/** One instance of an upstream service. */
export interface Instance {
  /** Stable id: the registry's instance id, or the URL of a static one. */
  readonly id: string;
  /** Origin to forward to, e.g. `http://127.0.0.1:3001` (no path). */
  readonly url: string;
  /** Relative weight for weighted round-robin (default 1). */
  readonly weight: number;
  /** Free-form labels from discovery (zone, version, ...). */
  readonly metadata: Readonly<Record<string, string>>;
}

/** What a pick may depend on. */
export interface PickContext {
  /** Shuffle sharding: the tenant whose shard of instances serves this request. */
  readonly tenant?: string | undefined;
  /** Instances already tried for this request (a retry goes elsewhere when it can). */
  readonly exclude?: ReadonlySet<string> | undefined;
}

/** How one attempt against an instance ended, as the proxy saw it. */
export type AttemptOutcome =
  /** Any response the upstream produced that is not a 5xx (4xx included: the instance is fine). */
  | 'success'
  /** A 5xx from the upstream. */
  | 'server-error'
  /** The gateway could not get an answer: connect refused or reset, timeout, protocol error. */
  | 'gateway-error';

/** One pick: the instance, and the callback that reports the attempt (call it exactly once). */
export interface Lease {
  readonly instance: Instance;
  done(outcome: AttemptOutcome, latencyMs: number): void;
}

/** An instance as the admin API shows it. */
export interface InstanceStatus {
  readonly id: string;
  readonly url: string;
  /** Active health check verdict (`unknown` before the first check, or without checks). */
  readonly health: 'healthy' | 'unhealthy' | 'unknown';
  /** Passive outlier ejection: ejected until `ejectedUntil` (epoch ms), ejected `ejections` times so far. */
  readonly ejected: boolean;
  readonly ejectedUntil: number | undefined;
  readonly ejections: number;
  readonly outstanding: number;
  /** EWMA of attempt latency, ms (`undefined` before the first attempt). */
  readonly latencyEwmaMs: number | undefined;
  readonly consecutiveFailures: number;
}

/** A named upstream service: its instances, their health, and the balancer. */
export interface UpstreamService {
  readonly name: string;
  /** An instance for one attempt, or `undefined` when none is available (the proxy answers 503). */
  pick(ctx?: PickContext): Lease | undefined;
  /** Every known instance with its state. */
  status(): InstanceStatus[];
  /** Stops health checks and discovery polling. */
  close(): Promise<void>;
}
