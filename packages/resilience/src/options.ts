/** Construction-time checks shared by every policy. Each throws `InvalidOptionError` naming the option. */
import { InvalidOptionError } from './errors.js';

export function duration(policy: string, option: string, value: number, { allowZero = true, allowInfinity = false } = {}): number {
  const ok = typeof value === 'number' && !Number.isNaN(value) && (allowInfinity || Number.isFinite(value)) && (allowZero ? value >= 0 : value > 0);
  if (!ok) throw new InvalidOptionError(policy, option, value, `a ${allowZero ? 'non-negative' : 'positive'} ${allowInfinity ? '' : 'finite '}number of milliseconds`);
  return value;
}

export function integer(policy: string, option: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(policy, option, value, max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer between ${min} and ${max}`);
  }
  return value;
}

export function percentage(policy: string, option: string, value: number): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0 || value > 100) {
    throw new InvalidOptionError(policy, option, value, 'a percentage between 0 and 100');
  }
  return value;
}

export function ratio(policy: string, option: string, value: number, { min = 0, max = 1 } = {}): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value < min || value > max) {
    throw new InvalidOptionError(policy, option, value, `a number between ${min} and ${max}`);
  }
  return value;
}

export function oneOf<T extends string>(policy: string, option: string, value: T, allowed: readonly T[]): T {
  if (!allowed.includes(value)) throw new InvalidOptionError(policy, option, value, `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`);
  return value;
}

export function fn<T extends (...args: never[]) => unknown>(policy: string, option: string, value: T): T {
  if (typeof value !== 'function') throw new InvalidOptionError(policy, option, value, 'a function');
  return value;
}

export function name(policy: string, value: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new InvalidOptionError(policy, 'name', value, 'a non-empty string');
  return value;
}
