/**
 * The hook through which telemetry follows messages without this package
 * importing it (DESIGN.md §1: core packages do not import OpenTelemetry).
 *
 * One process-wide instrumentation may be installed. It lives on `globalThis`
 * under `Symbol.for('bulwark.messaging.instrumentation')`, so an installer
 * (e.g. `@bulwark/telemetry`) can set it without depending on this package,
 * and duplicate installs of this package see the same one.
 *
 * - `inject(headers)` runs in `outbox.add` before the row is written: it adds
 *   propagation headers (`traceparent`, `tracestate`, ...) that the caller did
 *   not set itself. Headers the caller set win.
 * - `handle(info, run)` wraps each message handler's execution in a consumer,
 *   inside the handler's transaction, so the handler runs in the context the
 *   instrumentation establishes (a consumer span whose parent or link is the
 *   producer's traceparent).
 */
import type { Envelope } from './envelope.js';

export interface HandleInfo {
  readonly topic: string;
  readonly group: string;
  readonly envelope: Envelope;
  readonly deliveryCount: number;
  /** How many messages share this handler's transaction (1 when applied on its own). */
  readonly batchSize: number;
}

export interface MessagingInstrumentation {
  inject(headers: Record<string, string>): void;
  handle<T>(info: HandleInfo, run: () => Promise<T>): Promise<T>;
}

const KEY = Symbol.for('bulwark.messaging.instrumentation');
type WithInstrumentation = { [KEY]?: MessagingInstrumentation };

/** Installs (or with `undefined` removes) the process-wide instrumentation; returns the previous one. */
export function setMessagingInstrumentation(instrumentation: MessagingInstrumentation | undefined): MessagingInstrumentation | undefined {
  const holder = globalThis as WithInstrumentation;
  const previous = holder[KEY];
  if (instrumentation === undefined) delete holder[KEY];
  else holder[KEY] = instrumentation;
  return previous;
}

/** The installed instrumentation, if any. */
export function messagingInstrumentation(): MessagingInstrumentation | undefined {
  return (globalThis as WithInstrumentation)[KEY];
}
