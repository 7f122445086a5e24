/**
 * Declares the JetStream streams and durable consumers the transport needs,
 * idempotently: several processes may declare the same ones at once.
 */
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  ReplayPolicy,
  RetentionPolicy,
  StorageType,
  type ConsumerConfig,
  type ConsumerInfo,
  type JetStreamManager,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';

/** A stream to declare: file storage, limits retention, deduplication on `Nats-Msg-Id`. */
export interface StreamSpec {
  name: string;
  subjects: string[];
  duplicateWindowMs: number;
  /** 0: keep messages until removed. */
  maxAgeMs: number;
  replicas: number;
}

/** A durable pull consumer to declare for a consumer group. */
export interface ConsumerSpec {
  stream: string;
  name: string;
  filterSubject: string;
  ackWaitMs: number;
  maxDeliveries: number;
}

export function isApiError(error: unknown, code: number): boolean {
  return error instanceof JetStreamApiError && error.code === code;
}

async function streamInfo(jsm: JetStreamManager, name: string): Promise<StreamInfo | undefined> {
  try {
    return await jsm.streams.info(name);
  } catch (error) {
    if (isApiError(error, JetStreamApiCodes.StreamNotFound)) return undefined;
    throw error;
  }
}

export function streamConfig(spec: StreamSpec): Partial<StreamConfig> & { name: string } {
  return {
    name: spec.name,
    subjects: spec.subjects,
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    duplicate_window: nanos(spec.duplicateWindowMs),
    max_age: nanos(spec.maxAgeMs),
    num_replicas: spec.replicas,
  };
}

/** Brings an existing stream in line with `spec`: adds missing subjects, sets the dedup window. */
async function reconcileStream(jsm: JetStreamManager, info: StreamInfo, spec: StreamSpec): Promise<void> {
  const missing = spec.subjects.filter((s) => !info.config.subjects.includes(s));
  const window = nanos(spec.duplicateWindowMs);
  if (missing.length === 0 && info.config.duplicate_window === window) return;
  await jsm.streams.update(spec.name, { subjects: [...info.config.subjects, ...missing], duplicate_window: window });
}

/**
 * Creates the stream of `spec`, or checks and adjusts the one that exists.
 * Resolves `true` when this call created it.
 */
export async function ensureStream(jsm: JetStreamManager, spec: StreamSpec): Promise<boolean> {
  const existing = await streamInfo(jsm, spec.name);
  if (existing !== undefined) {
    await reconcileStream(jsm, existing, spec);
    return false;
  }
  try {
    await jsm.streams.add(streamConfig(spec));
    return true;
  } catch (error) {
    // Another process may have created it in between; anything else is real.
    const raced = await streamInfo(jsm, spec.name);
    if (raced === undefined) {
      throw new Error(`NATS: cannot create stream ${spec.name} for ${spec.subjects.join(', ')}: ${(error as Error).message}`, { cause: error });
    }
    await reconcileStream(jsm, raced, spec);
    return false;
  }
}

export function consumerConfig(spec: ConsumerSpec): Partial<ConsumerConfig> {
  return {
    durable_name: spec.name,
    filter_subject: spec.filterSubject,
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(spec.ackWaitMs),
    max_deliver: spec.maxDeliveries,
    deliver_policy: DeliverPolicy.All,
    replay_policy: ReplayPolicy.Instant,
  };
}

async function consumerInfo(jsm: JetStreamManager, stream: string, name: string): Promise<ConsumerInfo | undefined> {
  try {
    return await jsm.consumers.info(stream, name);
  } catch (error) {
    if (isApiError(error, JetStreamApiCodes.ConsumerNotFound)) return undefined;
    throw error;
  }
}

async function reconcileConsumer(jsm: JetStreamManager, info: ConsumerInfo, spec: ConsumerSpec): Promise<void> {
  const { config } = info;
  if (config.filter_subject !== spec.filterSubject) {
    throw new Error(
      `NATS: consumer ${spec.name} of stream ${spec.stream} filters ${String(config.filter_subject)}, not ${spec.filterSubject}; ` +
        'use another group name or delete the consumer',
    );
  }
  const wanted = consumerConfig(spec);
  if (config.ack_wait === wanted.ack_wait && config.max_deliver === wanted.max_deliver) return;
  await jsm.consumers.update(spec.stream, spec.name, { ack_wait: wanted.ack_wait, max_deliver: wanted.max_deliver });
}

/** Creates the durable consumer of `spec`, or checks and adjusts (ack wait, max deliver) the one that exists. */
export async function ensureConsumer(jsm: JetStreamManager, spec: ConsumerSpec): Promise<void> {
  const existing = await consumerInfo(jsm, spec.stream, spec.name);
  if (existing !== undefined) return reconcileConsumer(jsm, existing, spec);
  try {
    await jsm.consumers.add(spec.stream, consumerConfig(spec));
  } catch (error) {
    const raced = await consumerInfo(jsm, spec.stream, spec.name);
    if (raced === undefined) {
      throw new Error(`NATS: cannot create consumer ${spec.name} on stream ${spec.stream}: ${(error as Error).message}`, { cause: error });
    }
    await reconcileConsumer(jsm, raced, spec);
  }
}
