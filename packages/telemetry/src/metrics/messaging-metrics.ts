/**
 * Messaging metrics: what the outbox relay published and how late, what each
 * consumer did with its deliveries and how late they were, and — by a
 * periodic query of the module's own database — the outbox backlog and the
 * dead-letter count.
 */
import type { Consumer, MessagingTables, OutboxRelay } from '@bulwark/messaging';
import { systemClock, type Clock, type Timer } from '@bulwark/resilience';
import { sql, type Kysely, type Store } from '@bulwark/store';
import { requireName, requirePositiveInt } from '../errors.js';
import type { Metrics } from './metrics.js';

/** Lag buckets in seconds: 5 ms to 10 min. */
const LAG_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600];

/** Counts the relay's publishes and failures and observes its lag (commit to broker confirm of the oldest of each batch). */
export function instrumentOutboxRelay(metrics: Metrics, relay: Pick<OutboxRelay, 'on'>, options: { module: string }): () => void {
  const module = requireName('instrumentOutboxRelay', 'module', options.module);
  const published = metrics.counter('bulwark_messaging_published_total', 'Messages the outbox relay published, by module.', ['module']);
  const failures = metrics.counter('bulwark_messaging_publish_failures_total', 'Failed outbox relay publish rounds, by module.', ['module']);
  const lag = metrics.histogram('bulwark_messaging_relay_lag_seconds', 'Age of the oldest message of each relayed batch when the broker confirmed it, by module.', ['module'], { buckets: LAG_BUCKETS });
  const labels = { module };
  const offPublished = relay.on('published', ({ count, oldestLagMs }) => {
    published.inc(labels, count);
    lag.observe(labels, Math.max(0, oldestLagMs) / 1000);
  });
  const offFailed = relay.on('publishFailed', () => failures.inc(labels));
  return () => {
    offPublished();
    offFailed();
  };
}

/**
 * Counts a consumer's deliveries by outcome (`handled`, `duplicate`, `retry`,
 * `dead-lettered`) and observes its lag (now − the message's `occurredAt`) and
 * handling time. `topic` and `group` label the series.
 */
export function instrumentConsumer(metrics: Metrics, consumer: Pick<Consumer<unknown>, 'on'>, options: { topic: string; group: string }): () => void {
  const topic = requireName('instrumentConsumer', 'topic', options.topic);
  const group = requireName('instrumentConsumer', 'group', options.group);
  const consumed = metrics.counter('bulwark_messaging_consumed_total', 'Deliveries a consumer settled, by topic, group and outcome (handled, duplicate, retry, dead-lettered).', ['topic', 'group', 'outcome']);
  const lag = metrics.histogram('bulwark_messaging_consumer_lag_seconds', 'Time from a message\'s occurrence to its handling, by topic and group.', ['topic', 'group'], { buckets: LAG_BUCKETS });
  const duration = metrics.histogram('bulwark_messaging_handler_duration_seconds', 'Time to handle one delivery (transaction included), by topic and group.', ['topic', 'group']);
  const labels = { topic, group };
  const byOutcome = new Map<string, Record<string, string>>();
  return consumer.on('settled', (event) => {
    let outcome = byOutcome.get(event.outcome);
    if (outcome === undefined) byOutcome.set(event.outcome, (outcome = { topic, group, outcome: event.outcome }));
    consumed.inc(outcome);
    duration.observe(labels, Math.max(0, event.durationMs) / 1000);
    if (event.lagMs !== undefined && event.outcome !== 'duplicate') lag.observe(labels, Math.max(0, event.lagMs) / 1000);
  });
}

export interface BacklogOptions {
  /** Labels the series; usually the store's module. */
  module: string;
  /** Query interval. Default 15 000 ms. */
  intervalMs?: number;
  /** Schedules the queries. Default the system clock. */
  clock?: Clock;
  /** Epoch milliseconds, for the age of the oldest unpublished row. Default `Date.now`. */
  now?: () => number;
}

/** What `watchMessagingBacklog` returns. */
export interface BacklogWatch {
  /** Runs the queries now and updates the gauges. Never rejects (a failed query counts in `bulwark_messaging_backlog_query_failures_total`). */
  refresh(): Promise<void>;
  stop(): void;
}

/**
 * Queries the module's database every `intervalMs` for the outbox backlog
 * (unpublished rows), the age of the oldest unpublished row, and the dead
 * letters not yet replayed; reports them as gauges labelled by module.
 */
export function watchMessagingBacklog<DB>(metrics: Metrics, store: Store<DB>, options: BacklogOptions): BacklogWatch {
  const module = requireName('watchMessagingBacklog', 'module', options.module);
  const intervalMs = requirePositiveInt('watchMessagingBacklog', 'intervalMs', options.intervalMs ?? 15_000);
  const clock = options.clock ?? systemClock;
  const now = options.now ?? Date.now;
  const db = store.db as unknown as Kysely<MessagingTables>;
  const backlog = metrics.gauge('bulwark_messaging_outbox_backlog', 'Outbox rows not yet published, by module.', ['module']);
  const oldest = metrics.gauge('bulwark_messaging_outbox_oldest_age_seconds', 'Age of the oldest unpublished outbox row (0 when none), by module.', ['module']);
  const dead = metrics.gauge('bulwark_messaging_dead_letters', 'Dead letters not replayed, by module.', ['module']);
  const failures = metrics.counter('bulwark_messaging_backlog_query_failures_total', 'Failed backlog queries, by module.', ['module']);
  const labels = { module };
  let timer: Timer | undefined;
  let stopped = false;

  const refresh = async (): Promise<void> => {
    try {
      const outbox = await db
        .selectFrom('messaging_outbox')
        .select([sql<number>`count(*)`.as('n'), sql<number | null>`min(created_at)`.as('oldest')])
        .where('published_at', 'is', null)
        .executeTakeFirst();
      const letters = await db.selectFrom('messaging_dead_letters').select(sql<number>`count(*)`.as('n')).where('replayed_at', 'is', null).executeTakeFirst();
      backlog.set(labels, Number(outbox?.n ?? 0));
      oldest.set(labels, outbox?.oldest == null ? 0 : Math.max(0, now() - Number(outbox.oldest)) / 1000);
      dead.set(labels, Number(letters?.n ?? 0));
    } catch {
      failures.inc(labels);
    }
  };
  const schedule = (): void => {
    if (stopped) return;
    timer = clock.setTimer(() => {
      void refresh().then(schedule);
    }, intervalMs);
    (timer as { unref?: () => void }).unref?.();
  };
  schedule();
  return {
    refresh,
    stop: () => {
      stopped = true;
      timer?.cancel();
    },
  };
}
