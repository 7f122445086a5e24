/**
 * `@bulwark/saga/participants`: saga participants behind one interface, so a
 * step's code does not change with the transport — over HTTP with the
 * resilient client (`httpParticipant`), or by command and reply messages
 * through the outbox (`messageParticipant` + `listenForReplies` on the
 * orchestrator side, `serveCommands` on the participant side). Every call
 * carries the step's idempotency key; failures come back classified for the
 * step's retry policy (a refusal is final, the rest is retried with the same key).
 *
 * @example
 * ```ts
 * import { httpParticipant, messageParticipant, listenForReplies, type Participant } from '@bulwark/saga/participants';
 * const payments: Participant = httpParticipant(paymentsClient, { 'payments.charge': 'POST /charges', 'payments.refund': 'POST /charges/{invokeKey}/refund' });
 * // or: messageParticipant({ name: 'payments', store, outbox, topic: 'payments.commands', replies: await listenForReplies({ store, transport, topic: 'orders.replies', group: 'orders-1' }) });
 * defineSaga('CreateOrder', { input }).step('charge', {
 *   invoke: (o, ctx) => payments.call<{ chargeId: string }>('payments.charge', { amount: o.amount }, ctx),
 *   compensate: (_o, ctx) => payments.call('payments.refund', {}, ctx),
 * });
 * ```
 */
export { type Participant, type ParticipantContext, type CallMetadata, PARTICIPANT_HEADERS, callMetadata } from './participant.js';
export { httpParticipant, type HttpOperation, type HttpParticipantOptions } from './http-participant.js';
export { messageParticipant, listenForReplies, CommandReplies, type MessageParticipantOptions, type CommandRepliesOptions } from './message-participant.js';
export { serveCommands, type ServeCommandsOptions, type CommandServer, type CommandContext, type CommandHandler, type TypedCommandHandler } from './serve-commands.js';
export { participantMigrations, CommandReplyMessage, COMMAND_REPLY_TYPE, type CommandReply, type OkReply, type RefusedReply, type ParticipantTables } from './messages.js';
export {
  ParticipantError,
  ParticipantRefusedError,
  ParticipantUnavailableError,
  ParticipantNoReplyError,
  ParticipantConfigError,
  isParticipantError,
  participantErrorCodes,
  refuse,
  type ParticipantErrorCode,
} from './errors.js';
