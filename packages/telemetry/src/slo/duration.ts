/**
 * Durations as SLO specs and Prometheus write them: `5m`, `6h`, `30d`.
 * Specs may also give plain milliseconds; both become milliseconds here, and
 * milliseconds become the shortest Prometheus spelling again for rule names
 * (`slo:sli_error:ratio_rate5m`) and range selectors (`[5m]`).
 */

const units = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
type Unit = keyof typeof units;

/** One minute, one hour and one day in milliseconds. */
export const MINUTE = units.m;
export const HOUR = units.h;
export const DAY = units.d;

/** A duration: a Prometheus-style string with one unit (`ms`, `s`, `m`, `h`, `d`) or milliseconds. */
export type Duration = string | number;

/**
 * Milliseconds of `value`, or undefined when it is not a positive, finite
 * duration (`'5m'` is 300 000; `'1h30m'`, `'-5m'`, `'0s'` and `NaN` are undefined).
 */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value > 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(value.trim());
  if (match === null) return undefined;
  const ms = Number(match[1]) * units[match[2] as Unit];
  return ms > 0 && Number.isFinite(ms) ? ms : undefined;
}

/**
 * The shortest whole-unit spelling of `ms` (`300000` -> `'5m'`, `2592000000` -> `'30d'`),
 * as Prometheus range selectors and Sloth rule names use it.
 */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    if (ms % units[unit] === 0) return `${ms / units[unit]}${unit}`;
  }
  return `${Math.round(ms)}ms`;
}
