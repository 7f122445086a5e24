/** `@bulwark/saga`: durable sagas on the service's own database — typed steps with compensation, leases with takeover, semantic locks, entry backpressure, an audited operator API. */
export { defineSaga, SagaBuilder, type SagaDefinition, type SagaOptions, type StepOptions, type StepDefinition, type StepContext, type CompensationContext, type StepOutput } from './definition.js';
export { createSagaOrchestrator, SagaOrchestrator, type SagaOrchestratorOptions, type StartOptions, type SagaHandle, type SagaOutcome } from './orchestrator.js';
export { SagaAdmin, SAGA_STATES, type SagaAdminOptions, type SagaListFilter, type SagaSummary, type SagaDetail, type TimelineEntry, type OperatorAction } from './admin.js';
export { sagaMigrations } from './schema.js';
export { type SagaState, type SagaPhase, type StepLogRow, type AuditRow } from './repository.js';
export { type EntryBreakerOptions } from './entry-guard.js';
export { type SagaEvents, type SagaEventName, type SagaListener } from './events.js';
export {
  SagaError,
  isSagaError,
  sagaErrorCodes,
  SagaDefinitionError,
  SagaConfigError,
  InvalidSagaInputError,
  SagaLockedError,
  SagaRefusedError,
  SagaNotFoundError,
  SagaStateError,
  InvalidSagaActionError,
  UnknownSagaDefinitionError,
  SagaClosedError,
  SagaWaitTimeoutError,
  type SagaErrorCode,
} from './errors.js';
