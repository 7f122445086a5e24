/**
 * What an orchestrator reports, for telemetry (metrics, one span per step)
 * and alerting. Listeners run synchronously; one that throws is reported as
 * a process warning and never disturbs a saga.
 */

interface SagaRef {
  sagaId: string;
  type: string;
  version: number;
}

export interface SagaEvents {
  /** A saga was persisted and will run (`queued` when it waits for its lock). */
  started: SagaRef & { lockKey: string | null; queued: boolean };
  /** An invoke or a compensation begins (once per step, not per attempt). */
  'step-started': SagaRef & { step: string; phase: 'invoke' | 'compensate' };
  'step-succeeded': SagaRef & { step: string; phase: 'invoke' | 'compensate'; attempts: number; durationMs: number };
  /** The step failed for good (retries spent, a refusal, or out of time). */
  'step-failed': SagaRef & { step: string; phase: 'invoke' | 'compensate'; attempts: number; durationMs: number; error: string };
  /** The forward path failed for good: the saga compensates (`compensating`), or is stuck past its pivot. */
  failed: SagaRef & { step: string; error: string; compensating: boolean };
  /** Every completed step was undone: the saga ended as failed, cleanly. */
  compensated: SagaRef & { durationMs: number };
  completed: SagaRef & { durationMs: number };
  /** Alert: the saga cannot go on by itself and waits for an operator. */
  stuck: SagaRef & { step: string; phase: 'invoke' | 'compensate'; error: string };
  /** An operator changed the saga (retry, force compensation, resolve). */
  operator: SagaRef & { action: string; actor: string; reason: string; before: string; after: string };
  /** This orchestrator claimed a saga whose lease had expired or was released (after a crash, a shutdown, an operator action). */
  'lease-taken': SagaRef & { epoch: number };
  /** This orchestrator lost a saga it drove (another took it over, or an operator changed it); it stopped driving it. */
  'lease-lost': SagaRef;
  /** Alert: the saga is past its deadline and not finished. */
  overdue: SagaRef & { state: string; overdueMs: number };
  /** Entry backpressure refused a new saga. */
  refused: { type: string; failureRate: number };
  /** Something went wrong outside any one saga (a database error in a background loop). */
  error: { where: string; error: unknown };
}

export type SagaEventName = keyof SagaEvents;
export type SagaListener<E extends SagaEventName> = (event: SagaEvents[E]) => void;

export class SagaEventEmitter {
  private readonly listeners = new Map<SagaEventName, ((event: never) => void)[]>();

  /** Subscribes; returns the function that unsubscribes. */
  on<E extends SagaEventName>(event: E, listener: SagaListener<E>): () => void {
    const list = this.listeners.get(event) ?? [];
    list.push(listener);
    this.listeners.set(event, list);
    return () => {
      const i = list.indexOf(listener);
      if (i >= 0) list.splice(i, 1);
    };
  }

  /** True when someone listens (skip building an event nobody reads). */
  has(event: SagaEventName): boolean {
    return (this.listeners.get(event)?.length ?? 0) > 0;
  }

  emit<E extends SagaEventName>(event: E, payload: SagaEvents[E]): void {
    const list = this.listeners.get(event);
    if (list === undefined) return;
    for (const listener of list) {
      try {
        (listener as SagaListener<E>)(payload);
      } catch (error) {
        process.emitWarning(`bulwark saga: a "${event}" listener threw: ${String(error)}`);
      }
    }
  }
}
