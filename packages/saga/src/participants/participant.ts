/**
 * A saga participant: a service a step asks to do (or undo) something, over
 * whatever transport. Step code is written once against `Participant` and
 * runs unchanged whether the participant is reached over HTTP
 * (`httpParticipant`) or by command and reply messages (`messageParticipant`).
 *
 * Every call carries the step's idempotency key (`sagaId:step`, or
 * `sagaId:step:compensate` for a compensation, which also carries the invoke
 * key of the operation to undo), so retries, re-sends and resumptions after a
 * crash take effect once; and the step's `signal`, so a call stops when the
 * attempt, the step or the saga runs out of time.
 *
 * Failures come back classified for the saga's retry policy
 * (`retryable`, `status`): a refusal is final, a transient failure is retried
 * with the same key (see `errors.ts`).
 *
 * @example
 * ```ts
 * const createOrder = (inventory: Participant, payments: Participant) =>
 *   defineSaga('CreateOrder', { input: parseOrder })
 *     .step('reserve', {
 *       invoke: (o, ctx) => inventory.call<{ reservationId: string }>('inventory.reserve', { sku: o.sku, qty: o.qty }, ctx),
 *       compensate: (_o, ctx) => inventory.call('inventory.release', {}, ctx), // ctx.invokeKey names the reservation
 *     })
 *     .step('charge', { pivot: true, invoke: (o, ctx) => payments.call('payments.charge', { amount: o.amount }, ctx) })
 *     .build();
 * // the same definition, two transports:
 * createOrder(httpParticipant(inventoryClient, inventoryRoutes), httpParticipant(paymentsClient, paymentsRoutes));
 * createOrder(messageParticipant({ name: 'inventory', ... }), messageParticipant({ name: 'payments', ... }));
 * ```
 */
import type { StepContext } from '../definition.js';

/**
 * What a participant call needs from the step: its `StepContext`, or its
 * `CompensationContext` (which adds `invokeKey`, the operation to undo).
 */
export type ParticipantContext = StepContext & { readonly invokeKey?: string };

export interface Participant {
  /** The participant's name, in errors. */
  readonly name: string;
  /**
   * Asks the participant to perform `operation` with `request` (JSON) under
   * `ctx.idempotencyKey`, and resolves to its answer (JSON). Rejects with a
   * `ParticipantRefusedError` (final), a transient `ParticipantError`, or the
   * step signal's reason when the step gave up.
   */
  call<Res = unknown>(operation: string, request: unknown, ctx: ParticipantContext): Promise<Res>;
}

/** Metadata every participant call carries, whatever the transport. */
export interface CallMetadata {
  idempotencyKey: string;
  sagaId: string;
  sagaType: string;
  step: string;
  phase: 'invoke' | 'compensate';
  /** On a compensation: the key of the operation it undoes. */
  invokeKey: string | undefined;
}

/** The metadata of a call made with `ctx`. */
export function callMetadata(ctx: ParticipantContext): CallMetadata {
  const invokeKey = typeof ctx.invokeKey === 'string' ? ctx.invokeKey : undefined;
  return { idempotencyKey: ctx.idempotencyKey, sagaId: ctx.sagaId, sagaType: ctx.sagaType, step: ctx.step, phase: invokeKey === undefined ? 'invoke' : 'compensate', invokeKey };
}

/** Header names (HTTP, lower case) and message header names of the call metadata. */
export const PARTICIPANT_HEADERS = {
  idempotencyKey: 'idempotency-key',
  sagaId: 'bulwark-saga-id',
  sagaType: 'bulwark-saga-type',
  step: 'bulwark-saga-step',
  phase: 'bulwark-saga-phase',
  invokeKey: 'bulwark-invoke-key',
  replyTo: 'bulwark-reply-to',
  deadlineAt: 'bulwark-deadline-at',
} as const;

/** The call metadata as headers. */
export function metadataHeaders(meta: CallMetadata): Record<string, string> {
  const headers: Record<string, string> = {
    [PARTICIPANT_HEADERS.idempotencyKey]: meta.idempotencyKey,
    [PARTICIPANT_HEADERS.sagaId]: meta.sagaId,
    [PARTICIPANT_HEADERS.sagaType]: meta.sagaType,
    [PARTICIPANT_HEADERS.step]: meta.step,
    [PARTICIPANT_HEADERS.phase]: meta.phase,
  };
  if (meta.invokeKey !== undefined) headers[PARTICIPANT_HEADERS.invokeKey] = meta.invokeKey;
  return headers;
}
