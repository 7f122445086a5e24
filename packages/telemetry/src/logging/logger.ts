/**
 * `createLogger`: pino, wired to the other two pillars and safe to call from
 * anywhere.
 *
 * - Every line carries `trace_id` and `span_id` of the active span (a pino
 *   `mixin`), and `service` / `version` base fields.
 * - Secrets are redacted by default: the values of keys named like
 *   authorization, cookie, set-cookie, password, token, secret or an API key,
 *   anywhere in the first three levels of a line (`redact.ts`); `redact` adds
 *   PII paths of your own (pino paths: `customer.email`, `*.phone`).
 * - `logger.modules.get('payments')` is a child logger (`module: 'payments'`)
 *   whose level can be changed at runtime (`modules.setLevel`, or the
 *   `/admin/log-levels` route plugin).
 * - `sampling: { ratio }` keeps every `warn` and above and a ratio of the
 *   rest; inside a trace the decision follows the trace (all lines of a
 *   sampled trace are kept; otherwise a deterministic function of the trace
 *   id), so a trace's lines are kept or dropped together.
 * - Logging never throws into the caller: a failing serializer, mixin or
 *   destination loses the line, counts it (`logger.modules.failures`) and
 *   warns once.
 *
 * @example
 * ```ts
 * const logger = createLogger({ service: 'orders', version: '1.4.0', redact: ['customer.email'], sampling: { ratio: 0.1 } });
 * const app = Fastify({ loggerInstance: logger, logController: new LogController({ disableRequestLogging: true }) });
 * logger.modules.get('payments').debug({ orderId }, 'charging');
 * ```
 */
import pino, { type DestinationStream, type Level, type Logger, type LoggerOptions } from 'pino';
import { InvalidTelemetryOptionError, requireName, requireRatio } from '../errors.js';
import { LogLevels, LOG_LEVELS } from './log-levels.js';
import { activeTraceFields, kLogSampling, keepLine, traceDecided } from './trace-fields.js';
import { LineBuffer } from './line-buffer.js';
import { SECRET_KEYS, redactSecrets } from './redact.js';

export { SECRET_KEYS };

export interface CreateLoggerOptions {
  service: string;
  version?: string;
  /** Root level. Default `info` (or `LOG_LEVEL`). */
  level?: Level;
  /** A pino destination stream, or a file path (written asynchronously, in 32 KiB writes, each line within a second). Default stdout. */
  destination?: DestinationStream | string;
  /** Paths to redact (PII), in pino's path syntax: `customer.email`, `*.phone`. */
  redact?: string[];
  /** More secret key names (case-insensitive), on top of `SECRET_KEYS`. */
  secretKeys?: string[];
  /** Replacement for redacted values. Default `[redacted]`. */
  censor?: string;
  /** Keep all warn+ lines and this ratio of the rest. Default: keep everything. */
  sampling?: { ratio: number; random?: () => number };
  /** More fields on every line. */
  base?: Record<string, unknown>;
  /** Passed through to pino last (advanced). */
  pino?: LoggerOptions;
}

/** A pino logger with its module registry. */
export type BulwarkLogger = Logger & { readonly modules: LogLevels };

/** Builds the root logger; see the module comment. Throws `InvalidTelemetryOptionError` on bad options. */
export function createLogger(options: CreateLoggerOptions): BulwarkLogger {
  const service = requireName('createLogger', 'service', options.service);
  const level = options.level ?? (process.env.LOG_LEVEL as Level | undefined) ?? 'info';
  if (!LOG_LEVELS.includes(level)) throw new InvalidTelemetryOptionError('createLogger', 'level', level, `one of ${LOG_LEVELS.join(', ')}`);
  if (options.redact !== undefined && (!Array.isArray(options.redact) || options.redact.some((p) => typeof p !== 'string' || p === ''))) {
    throw new InvalidTelemetryOptionError('createLogger', 'redact', options.redact, 'a list of non-empty path strings');
  }
  const ratio = options.sampling === undefined ? 1 : requireRatio('createLogger', 'sampling.ratio', options.sampling.ratio);
  const random = options.sampling?.random ?? Math.random;
  const failures = { count: 0, warned: false };
  const fail = (error: unknown): void => {
    failures.count++;
    if (!failures.warned) {
      failures.warned = true;
      process.emitWarning(`@bulwark/telemetry: a log line was lost (${error instanceof Error ? error.message : String(error)}); further losses are only counted`);
    }
  };

  const censor = options.censor ?? '[redacted]';
  const secrets = new Set([...SECRET_KEYS, ...(options.secretKeys ?? []).map((k) => k.toLowerCase())]);
  const base: Record<string, unknown> = { ...options.base, service };
  if (options.version !== undefined) base.version = options.version;
  const pinoOptions: LoggerOptions = {
    level,
    base,
    ...(options.redact === undefined || options.redact.length === 0 ? {} : { redact: { paths: options.redact, censor } }),
    formatters: {
      level: (label) => ({ level: label }),
      log: (object) => redactSecrets(object, secrets, censor),
    },
    // The mixin's fields go under the line's own; outside a span nothing is allocated.
    mixinMergeStrategy: (line, mixin) => (mixin === EMPTY ? line : Object.assign(mixin, line)),
    mixin(line) {
      try {
        // A line that names its trace already (the access line) needs no lookup of the active span.
        if (typeof (line as { trace_id?: unknown }).trace_id === 'string') return EMPTY;
        return activeTraceFields() ?? EMPTY;
      } catch {
        return EMPTY;
      }
    },
    hooks: {
      logMethod(args, method, levelValue) {
        try {
          if (ratio < 1 && levelValue < WARN && !traceDecided(args[0]) && !keepLine(ratio, random)) return;
          method.apply(this, args);
        } catch (error) {
          fail(error);
        }
      },
    },
    ...options.pino,
  };
  const destination = resolveDestination(options.destination, fail);
  let logger: Logger;
  try {
    logger = destination === undefined ? pino(pinoOptions) : pino(pinoOptions, destination);
  } catch (error) {
    throw new InvalidTelemetryOptionError('createLogger', 'redact', options.redact, `valid pino options (${error instanceof Error ? error.message : String(error)})`);
  }
  const modules = new LogLevels(logger, failures);
  Object.defineProperty(logger, 'modules', { value: modules, enumerable: false });
  if (ratio < 1) Object.defineProperty(logger, kLogSampling, { value: ratio, enumerable: false });
  return logger as BulwarkLogger;
}

const EMPTY = Object.freeze({}) as Record<string, never>;
const WARN = 40;

function resolveDestination(destination: CreateLoggerOptions['destination'], fail: (error: unknown) => void): DestinationStream | undefined {
  if (destination === undefined) return undefined;
  let stream: DestinationStream;
  if (typeof destination === 'string') {
    if (destination === '') throw new InvalidTelemetryOptionError('createLogger', 'destination', destination, 'a file path or a stream');
    // Buffered: one write per 32 KiB (or per second) instead of one per line (flushed on exit). Bounded: past 16 MiB
    // waiting for the disk, lines are dropped rather than growing the heap without limit.
    stream = new LineBuffer(pino.destination({ dest: destination, sync: false, mkdir: true, minLength: 0, maxLength: 16 * 1024 * 1024 }), 32 * 1024);
  } else if (typeof destination === 'object' && destination !== null && typeof destination.write === 'function') {
    stream = destination;
  } else {
    throw new InvalidTelemetryOptionError('createLogger', 'destination', destination, 'a file path or a stream with write()');
  }
  // A broken destination emits 'error'; unheard, that would crash the process.
  const emitter = stream as { on?: (event: string, listener: (error: unknown) => void) => unknown };
  if (typeof emitter.on === 'function') emitter.on('error', fail);
  return stream;
}
