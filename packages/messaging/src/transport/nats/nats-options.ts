/** Options of the NATS JetStream transport, and their defaults. */
import type { ConnectionOptions } from '@nats-io/transport-node';
import { assertValidStreamPrefix, assertValidSubjectPrefix } from './nats-names.js';

/**
 * Options of {@link connectNatsTransport}.
 *
 * ```ts
 * const options: NatsTransportOptions = { servers: 'nats://127.0.0.1:4222', name: 'billing', duplicateWindowMs: 5 * 60_000 };
 * ```
 */
export interface NatsTransportOptions {
  /** One or more `host:port` / `nats://` URLs. */
  servers: string | string[];
  /** Connection name shown by the server's monitoring. */
  name?: string;
  /** Prefix of every stream this transport creates: `<prefix><topic>` and `<prefix>DLQ`. Default `BULWARK_`. */
  streamPrefix?: string;
  /** Prefix of the subject of every topic (`<prefix><topic>`), e.g. `app.`. Default none: the subject is the topic. */
  subjectPrefix?: string;
  /** Prefix of dead-letter subjects: `<prefix><group>.<topic>`. Default `<subjectPrefix>dlq.`. */
  deadLetterSubjectPrefix?: string;
  /** Window in which a second publish of the same envelope id is dropped (`duplicate_window`). Default 2 min. */
  duplicateWindowMs?: number;
  /** How long a topic stream keeps messages (`max_age`); 0 keeps them until removed. Default 0. */
  maxAgeMs?: number;
  /** Stream replicas in a cluster. Default 1. */
  replicas?: number;
  /** How long one pull request waits for messages before the next (min 1 000). Default 10 s. */
  pullExpiresMs?: number;
  /** Timeout of JetStream API calls, publish acks and ack confirmations. Default 5 s. */
  requestTimeoutMs?: number;
  /**
   * Told about errors the transport survives on its own: a handler that threw,
   * a pull that failed during a broker outage. Default: ignored.
   */
  onError?: (error: unknown, context: NatsErrorContext) => void;
  /** More connection options (credentials, TLS, ...). Reconnection is always unlimited. */
  connection?: Omit<Partial<ConnectionOptions>, 'servers' | 'name' | 'maxReconnectAttempts'>;
}

/**
 * Where an error reported to {@link NatsTransportOptions.onError} happened.
 *
 * ```ts
 * const onError = (error: unknown, { operation, topic, group }: NatsErrorContext) => log.warn({ error, operation, topic, group });
 * ```
 */
export interface NatsErrorContext {
  operation: 'handler' | 'fetch' | 'settle';
  topic: string;
  group: string;
}

export interface ResolvedNatsOptions {
  servers: string[];
  name: string | undefined;
  streamPrefix: string;
  subjectPrefix: string;
  deadLetterSubjectPrefix: string;
  duplicateWindowMs: number;
  maxAgeMs: number;
  replicas: number;
  pullExpiresMs: number;
  requestTimeoutMs: number;
  onError: (error: unknown, context: NatsErrorContext) => void;
  connection: Omit<Partial<ConnectionOptions>, 'servers' | 'name' | 'maxReconnectAttempts'>;
}

function positive(option: string, value: number, min = 1): number {
  if (!Number.isFinite(value) || value < min) throw new RangeError(`${option} must be a number >= ${min} (got ${value})`);
  return value;
}

export function resolveNatsOptions(options: NatsTransportOptions): ResolvedNatsOptions {
  const servers = Array.isArray(options.servers) ? options.servers : [options.servers];
  if (servers.length === 0) throw new TypeError('NATS transport: at least one server is required');
  const streamPrefix = options.streamPrefix ?? 'BULWARK_';
  assertValidStreamPrefix(streamPrefix);
  const subjectPrefix = options.subjectPrefix ?? '';
  assertValidSubjectPrefix('subjectPrefix', subjectPrefix, true);
  const deadLetterSubjectPrefix = options.deadLetterSubjectPrefix ?? `${subjectPrefix}dlq.`;
  assertValidSubjectPrefix('deadLetterSubjectPrefix', deadLetterSubjectPrefix, false);
  return {
    servers,
    name: options.name,
    streamPrefix,
    subjectPrefix,
    deadLetterSubjectPrefix,
    duplicateWindowMs: positive('duplicateWindowMs', options.duplicateWindowMs ?? 120_000),
    maxAgeMs: positive('maxAgeMs', options.maxAgeMs ?? 0, 0),
    replicas: positive('replicas', options.replicas ?? 1),
    pullExpiresMs: positive('pullExpiresMs', options.pullExpiresMs ?? 10_000, 1_000),
    requestTimeoutMs: positive('requestTimeoutMs', options.requestTimeoutMs ?? 5_000),
    onError: options.onError ?? (() => undefined),
    connection: options.connection ?? {},
  };
}
