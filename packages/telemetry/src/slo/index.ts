/**
 * `@bulwark/telemetry/slo`: service level objectives, live, in process.
 *
 * Declare SLOs as data, feed them good/total events (or point them at
 * prom-client counters), and get error budget, burn rates and the SRE
 * workbook's multiwindow, multi-burn-rate alerts, as events, over HTTP and to
 * webhooks; export the same policy as Prometheus rules shaped like Sloth's.
 *
 * @example
 * ```ts
 * import { createSloEngine, webhook, sloRoutes, prometheusRules } from '@bulwark/telemetry/slo';
 *
 * const slos = [{ name: 'checkout-availability', service: 'orders', objective: 0.999 }];
 * const engine = createSloEngine({ slos, sinks: [webhook({ url: process.env.ALERT_WEBHOOK! })] });
 * engine.slo('checkout-availability').record(good, total);
 * app.register(sloRoutes, { engine, prefix: '/admin' });
 * writeFileSync('slo-rules.yml', prometheusRules(slos));
 * ```
 */
export {
  sloErrorCodes,
  SloError,
  SloSpecError,
  SloNotFoundError,
  InvalidRecordError,
  WebhookFailedError,
  WebhookRejectedError,
  isSloError,
  isSloSpecError,
  isSloNotFoundError,
  isInvalidRecordError,
  isWebhookError,
  type SloErrorCode,
  type SloSpecIssue,
} from './errors.js';
export { parseDuration, formatDuration, type Duration } from './duration.js';
export {
  validateSlos,
  defaultAlertPolicy,
  type SloSpecInput,
  type SloSpec,
  type Sli,
  type EventsSliInput,
  type MetricsSliInput,
  type BurnRateAlertInput,
  type BurnRateAlert,
  type Severity,
  type ValidateOptions,
} from './spec.js';
export { type MetricSelector, type MetricRegistry } from './metric-source.js';
export { BucketRing, TieredCounts, defaultResolution, type Counts, type Resolution } from './buckets.js';
export { type SloAlert, type ConditionStatus, type AlertSink } from './alert.js';
export { SLO_CHANNEL, type Listener } from './events.js';
export {
  createSloEngine,
  SloEngine,
  type SloEngineOptions,
  type SloEngineEvents,
  type SloStatus,
  type BudgetStatus,
  type SloRecorder,
} from './engine.js';
export {
  webhook,
  WebhookNotifier,
  undiciTransport,
  type WebhookOptions,
  type WebhookStats,
  type WebhookEvents,
  type WebhookPayload,
  type WebhookTransport,
  type WebhookRequest,
  type WebhookResponse,
} from './webhook.js';
export { sloRoutes, type SloRoutesOptions } from './http.js';
export { prometheusRules, type PrometheusRulesOptions } from './prometheus-rules.js';
