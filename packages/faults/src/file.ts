/**
 * Rules files: a JSON document shaped like the body of `PUT /admin/faults`,
 * `{ "seed"?: n, "rules": [rule, ...] }`. Read synchronously (it is read at
 * start-up, with the rest of a configuration); every refusal is a
 * `FaultConfigError` naming the file and the field.
 *
 * @example
 * ```ts
 * const set = readFaultFile('./faults.json');
 * injector.replace(set);
 * ```
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { FaultConfigError } from './errors.js';
import { validateFaultSet, type FaultSet, type ValidateOptions } from './rules.js';

/** Reads and validates a rules file. */
export function readFaultFile(path: string, options: ValidateOptions = {}): FaultSet {
  const file = resolve(path);
  if (/\.ya?ml$/i.test(file)) throw new FaultConfigError('(root)', 'is YAML; a rules file is JSON', { file });
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new FaultConfigError('(root)', `cannot be read (${(error as Error).message})`, { file, cause: error });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new FaultConfigError('(root)', `is not valid JSON (${(error as Error).message})`, { file, cause: error });
  }
  try {
    return validateFaultSet(parsed, options);
  } catch (error) {
    throw error instanceof FaultConfigError ? error.within(undefined, file) : error;
  }
}
