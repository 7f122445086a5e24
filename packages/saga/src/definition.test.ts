import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { defineSaga } from './definition.js';
import { SagaDefinitionError, SagaConfigError, SagaError, SagaNotFoundError, isSagaError } from './errors.js';
import { ParticipantError, ParticipantRefusedError, ParticipantUnavailableError } from './participants/errors.js';
import { EntryGuard } from './entry-guard.js';
import { SagaOrchestrator } from './orchestrator.js';

const input = (raw: unknown) => raw as { id: string };
const noop = async (): Promise<void> => undefined;

function definitionError(path: string, reason: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof SagaDefinitionError, `expected SagaDefinitionError, got ${String(error)}`);
    assert.equal(error.path, path);
    assert.match(error.message, reason);
    assert.equal(error.code, 'BULWARK_SAGA_DEFINITION');
    return true;
  };
}

describe('saga definitions', () => {
  it('builds steps in order with their kinds, and types the data each step sees', () => {
    const def = defineSaga('Order', { version: 2, input })
      .step('reserve', { invoke: async (d) => ({ reservation: `r-${d.id}` }), compensate: noop })
      .step('charge', { invoke: async (d) => ({ charge: d.reservation.length }), compensate: noop })
      .step('confirm', { invoke: async (d) => void d.charge.toFixed(), pivot: true })
      .step('notify', { invoke: noop })
      .build();
    assert.equal(def.version, 2);
    assert.equal(def.pivotIndex, 2);
    assert.deepEqual(
      def.steps.map((s) => [s.name, s.kind, s.compensate !== undefined]),
      [
        ['reserve', 'compensatable', true],
        ['charge', 'compensatable', true],
        ['confirm', 'pivot', false],
        ['notify', 'retriable', false],
      ],
    );
    // Steps after the pivot retry every error by default; others only transient ones.
    assert.equal(def.steps[3]?.retry.maxAttempts, 10);
    assert.equal(def.steps[0]?.retry.maxAttempts, 3);
  });

  it('refuses duplicate step names, naming the step', () => {
    assert.throws(() => defineSaga('S', { input }).step('a', { invoke: noop, compensate: noop }).step('a', { invoke: noop, compensate: noop }).build(), definitionError('steps[1].name', /used by an earlier step/));
  });

  it('refuses a step before the pivot without a compensation', () => {
    assert.throws(() => defineSaga('S', { input }).step('a', { invoke: noop }).step('b', { invoke: noop, pivot: true }).build(), definitionError('steps[0].compensate', /is missing/));
    assert.throws(() => defineSaga('S', { input }).step('a', { invoke: noop }).build(), definitionError('steps[0].compensate', /is missing/));
  });

  it('refuses two pivots and a compensation after the pivot', () => {
    assert.throws(() => defineSaga('S', { input }).step('a', { invoke: noop, pivot: true }).step('b', { invoke: noop, pivot: true }).build(), definitionError('steps[1].pivot', /second pivot/));
    assert.throws(() => defineSaga('S', { input }).step('a', { invoke: noop, pivot: true }).step('b', { invoke: noop, compensate: noop }).build(), definitionError('steps[1].compensate', /not allowed after the pivot/));
  });

  it('refuses bad names, versions, timeouts, retries and an empty saga', () => {
    assert.throws(() => defineSaga('has space', { input }).step('a', { invoke: noop, pivot: true }).build(), definitionError('name', /letters/));
    assert.throws(() => defineSaga('S', { input, version: 0 }).step('a', { invoke: noop, pivot: true }).build(), definitionError('version', /integer >= 1/));
    assert.throws(() => defineSaga('S', { input }).build(), definitionError('steps', /at least one step/));
    assert.throws(() => defineSaga('S', { input }).step('a', { invoke: noop, pivot: true, timeoutMs: -1 }).build(), definitionError('steps[0].timeoutMs', /positive/));
    assert.throws(() => defineSaga('S', { input }).step('a', { invoke: noop, pivot: true, retry: { maxAttempts: 0 } }).build(), definitionError('steps[0].retry.maxAttempts', /integer >= 1/));
    assert.throws(() => defineSaga('S', { input, deadlineMs: Number.NaN }).step('a', { invoke: noop, pivot: true }).build(), definitionError('deadlineMs', /positive/));
    assert.throws(() => defineSaga('S', { input, onLocked: 'wait' as 'queue' }).step('a', { invoke: noop, pivot: true }).build(), definitionError('onLocked', /refuse/));
    assert.throws(() => defineSaga('S', { input }).step('a', { invoke: 'x' as unknown as typeof noop, pivot: true }).build(), definitionError('steps[0].invoke', /function/));
  });

  it('errors keep their identity across installs (brand, not prototype)', () => {
    const foreign = Object.assign(Object.create(Error.prototype) as Error, { code: 'BULWARK_SAGA_DEFINITION', message: 'x' });
    Object.defineProperty(foreign, Symbol.for('bulwark.saga.error'), { value: true });
    assert.ok(isSagaError(foreign));
    assert.ok(foreign instanceof SagaDefinitionError);
    assert.ok(!(foreign instanceof SagaConfigError));
  });

  it('participant errors belong to the saga family, with their own base class', () => {
    const refused = new ParticipantRefusedError('payments', 'charge', 'card declined', { status: 402 });
    assert.ok(refused instanceof SagaError && isSagaError(refused) && refused instanceof ParticipantError);
    assert.equal(refused.status, 402, "the participant's own status, which retries and breakers read");
    assert.equal(refused.retryable, false);
    assert.equal(new ParticipantRefusedError('inventory', 'reserve', 'out of stock').status, 422);
    assert.equal(new ParticipantUnavailableError('payments', 'charge', 'down').retryable, true);
    assert.ok(!(new SagaNotFoundError('x') instanceof ParticipantError));
  });
});

describe('orchestrator options', () => {
  it('stops start-up naming the bad option', () => {
    const def = defineSaga('S', { input }).step('a', { invoke: noop, pivot: true }).build();
    const store = { transaction: () => undefined, dialect: 'sqlite' } as never;
    assert.throws(() => new SagaOrchestrator({ store, sagas: [] }), (e: unknown) => e instanceof SagaConfigError && e.key === 'sagas');
    assert.throws(() => new SagaOrchestrator({ store, sagas: [def, def] }), (e: unknown) => e instanceof SagaConfigError && e.key === 'sagas[1]' && /twice/.test(e.message));
    assert.throws(() => new SagaOrchestrator({ store, sagas: [def], leaseMs: 0 }), (e: unknown) => e instanceof SagaConfigError && e.key === 'leaseMs');
    assert.throws(() => new SagaOrchestrator({ store, sagas: [def], maxConcurrent: 1.5 }), (e: unknown) => e instanceof SagaConfigError && e.key === 'maxConcurrent');
    assert.throws(() => new SagaOrchestrator({ store, sagas: [def], entryBreaker: { failureRateThreshold: 5 } }), (e: unknown) => e instanceof SagaConfigError && e.key === 'entryBreaker.failureRateThreshold');
  });
});

describe('entry guard', () => {
  it('refuses above the threshold once the window holds enough sagas, and reopens as failures age out', () => {
    const guard = new EntryGuard({ failureRateThreshold: 0.05, windowMs: 10_000, minimumSagas: 20 });
    let now = 1_000_000;
    for (let i = 0; i < 19; i++) guard.record('T', i < 2, now);
    assert.equal(guard.refusal('T', now), undefined, 'below the minimum it does not judge');
    guard.record('T', false, now);
    const refusal = guard.refusal('T', now);
    assert.equal(refusal?.failureRate, 0.1);
    assert.ok((refusal?.retryAfterMs ?? 0) > 0);
    assert.equal(guard.refusal('Other', now), undefined, 'per saga type');
    now += 5_000;
    for (let i = 0; i < 40; i++) guard.record('T', false, now);
    assert.equal(guard.refusal('T', now), undefined, '2 of 60 failed: under 5%');
    now += 10_000;
    for (let i = 0; i < 20; i++) guard.record('T', i === 0, now);
    assert.equal(guard.refusal('T', now), undefined, 'the old slices aged out: 1 of 20 is exactly 5%, not above');
    guard.record('T', true, now);
    assert.ok(guard.refusal('T', now) !== undefined);
  });
});
