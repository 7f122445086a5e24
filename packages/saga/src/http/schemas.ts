/**
 * JSON schemas of the operator routes: they validate requests (Fastify's
 * Ajv) and describe responses, so the kit's OpenAPI document lists every
 * route with its parameters, bodies and problem answers.
 */
import { SAGA_STATES } from '../admin.js';

const nullableString = { type: ['string', 'null'] } as const;
const nullableNumber = { type: ['number', 'null'] } as const;

/** A comma-separated list of saga states (`stuck,running`). */
const STATE_LIST = `^(${SAGA_STATES.join('|')})(,(${SAGA_STATES.join('|')}))*$`;

export const problemResponse = {
  type: 'object',
  description: 'RFC 9457 problem details (application/problem+json); `type` is a stable URI under https://bulwark.dev/problems/.',
  required: ['type', 'title', 'status'],
  properties: {
    type: { type: 'string', format: 'uri' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string' },
    retryable: { type: 'boolean' },
    requestId: { type: 'string' },
  },
  additionalProperties: true,
} as const;

export const sagaSummary = {
  type: 'object',
  required: ['id', 'type', 'version', 'state', 'phase', 'step', 'lockKey', 'owner', 'leaseUntil', 'failedStep', 'error', 'createdAt', 'updatedAt', 'deadlineAt', 'overdue'],
  properties: {
    id: { type: 'string' },
    type: { type: 'string' },
    version: { type: 'integer' },
    state: { type: 'string', enum: [...SAGA_STATES] },
    phase: { type: 'string', enum: ['forward', 'compensating'] },
    step: { ...nullableString, description: 'The step the saga is at (forward), or will compensate next.' },
    lockKey: nullableString,
    owner: { ...nullableString, description: 'The orchestrator holding its lease.' },
    leaseUntil: { type: 'number', description: 'Epoch ms; 0 when no orchestrator holds it.' },
    failedStep: nullableString,
    error: nullableString,
    createdAt: { type: 'number', description: 'Epoch ms.' },
    updatedAt: { type: 'number', description: 'Epoch ms.' },
    deadlineAt: { ...nullableNumber, description: 'Epoch ms by which it must pass its pivot.' },
    overdue: { type: 'boolean' },
  },
} as const;

const stepLog = {
  type: 'object',
  properties: {
    sagaId: { type: 'string' },
    seq: { type: 'integer' },
    step: { type: 'string' },
    phase: { type: 'string', enum: ['invoke', 'compensate'] },
    outcome: { type: 'string', enum: ['succeeded', 'failed'] },
    attempts: { type: 'integer' },
    startedAt: { type: 'number' },
    finishedAt: { type: 'number' },
    error: nullableString,
  },
} as const;

const audit = {
  type: 'object',
  properties: {
    sagaId: { type: 'string' },
    at: { type: 'number' },
    action: { type: 'string' },
    actor: { type: 'string' },
    reason: { type: 'string' },
    beforeState: { type: 'string' },
    afterState: { type: 'string' },
  },
} as const;

const timelineEntry = {
  type: 'object',
  description: 'kind `created` (state), `step` (step, phase, outcome, attempts, startedAt, durationMs, error) or `operator` (action, actor, reason, before, after).',
  required: ['at', 'kind'],
  properties: {
    at: { type: 'number' },
    kind: { type: 'string', enum: ['created', 'step', 'operator'] },
  },
  additionalProperties: true,
} as const;

export const sagaDetail = {
  type: 'object',
  required: [...sagaSummary.required, 'input', 'outputs', 'steps', 'audit', 'timeline'],
  properties: {
    ...sagaSummary.properties,
    input: { description: 'The parsed input (JSON).' },
    outputs: { type: 'object', additionalProperties: true, description: 'Each completed step’s output, by step name.' },
    steps: { type: 'array', items: stepLog },
    audit: { type: 'array', items: audit },
    timeline: { type: 'array', items: timelineEntry },
  },
} as const;

export const listQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    state: {
      type: 'array',
      items: { type: 'string', pattern: STATE_LIST },
      maxItems: SAGA_STATES.length,
      description: `Only these states: repeat the parameter or give a comma-separated list (${SAGA_STATES.join(', ')}).`,
    },
    type: { type: 'string', minLength: 1, maxLength: 100, description: 'Only sagas of this definition name.' },
    olderThanMs: { type: 'integer', minimum: 0, description: 'Only sagas created at least this long ago.' },
    newerThanMs: { type: 'integer', minimum: 0, description: 'Only sagas created at most this long ago.' },
    limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
    after: { type: 'string', minLength: 1, maxLength: 200, description: 'Cursor: `nextAfter` of the previous page (newest first).' },
  },
} as const;

export const overdueQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { limit: { type: 'integer', minimum: 1, maximum: 500, default: 100 } },
} as const;

export const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 200 } },
} as const;

export const actionBody = {
  type: 'object',
  required: ['reason'],
  additionalProperties: false,
  properties: { reason: { type: 'string', minLength: 1, maxLength: 1_000, description: 'Why: recorded in the audit trail with the authenticated actor.' } },
} as const;

export const sagaPage = {
  type: 'object',
  required: ['sagas', 'nextAfter'],
  properties: {
    sagas: { type: 'array', items: sagaSummary },
    nextAfter: { ...nullableString, description: 'Pass as `after` for the next page; null on the last page.' },
  },
} as const;

export const sagaList = {
  type: 'object',
  required: ['sagas'],
  properties: { sagas: { type: 'array', items: sagaSummary } },
} as const;
