/**
 * Password hashing with scrypt (`node:crypto`, memory-hard, async on the
 * libuv thread pool).
 *
 * - Defaults: N = 2^15, r = 8, p = 1 — 32 MiB and roughly 50–100 ms per hash
 *   on a server core, the OWASP-recommended floor for scrypt.
 * - The parameters travel with the hash (`scrypt$ln=15,r=8,p=1$<salt>$<key>`, base64),
 *   so they can be raised later: `needsRehash` says when a stored hash is
 *   weaker than the current parameters, and the auth service rehashes on the
 *   next successful login.
 * - Comparison is constant-time (`timingSafeEqual`).
 * - At most `maxConcurrent` hashes run at once and `maxQueue` wait (a
 *   `@bulwark/resilience` bulkhead): a login flood is refused with
 *   `AuthBusyError` (503) instead of queueing unboundedly on the thread pool
 *   and starving file and DNS work.
 * - `verifyAgainstDummy` does the same work against a fixed hash, so an
 *   unknown username costs as much as a wrong password (no user enumeration by timing).
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { bulkhead, isBulwarkError, type BulkheadPolicy } from '@bulwark/resilience';
import { AuthBusyError, AuthConfigError } from './errors.js';

export interface ScryptParams {
  /** log2 of the CPU/memory cost N. Default 15. */
  logN: number;
  /** Block size. Default 8. */
  r: number;
  /** Parallelisation. Default 1. */
  p: number;
}

export interface PasswordHasherOptions {
  params?: Partial<ScryptParams>;
  /** Hashes run at once. Default 4 (the default libuv pool size). */
  maxConcurrent?: number;
  /** Hashes allowed to wait. Default 64. */
  maxQueue?: number;
}

export const DEFAULT_SCRYPT_PARAMS: Readonly<ScryptParams> = Object.freeze({ logN: 15, r: 8, p: 1 });

const KEY_LENGTH = 32;
const SALT_LENGTH = 16;
/** Stored hashes asking for more than this are refused, so a corrupted row cannot exhaust memory. */
const MAX_LOG_N = 20;
const FORMAT = /^scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

export class PasswordHasher {
  readonly params: Readonly<ScryptParams>;
  private readonly pool: BulkheadPolicy;
  private dummy: Promise<string> | undefined;

  constructor(options: PasswordHasherOptions = {}) {
    const params = { ...DEFAULT_SCRYPT_PARAMS, ...options.params };
    if (!Number.isInteger(params.logN) || params.logN < 10 || params.logN > MAX_LOG_N) throw new AuthConfigError('params.logN', `an integer between 10 and ${MAX_LOG_N}`);
    if (!Number.isInteger(params.r) || params.r < 1 || params.r > 32) throw new AuthConfigError('params.r', 'an integer between 1 and 32');
    if (!Number.isInteger(params.p) || params.p < 1 || params.p > 16) throw new AuthConfigError('params.p', 'an integer between 1 and 16');
    this.params = Object.freeze(params);
    this.pool = bulkhead({ name: 'password-hashing', maxConcurrent: options.maxConcurrent ?? 4, maxQueue: options.maxQueue ?? 64 });
  }

  /** A new salted hash of `password`, with its parameters. */
  async hash(password: string): Promise<string> {
    const salt = randomBytes(SALT_LENGTH);
    const key = await this.derive(password, salt, this.params);
    return `scrypt$ln=${this.params.logN},r=${this.params.r},p=${this.params.p}$${salt.toString('base64')}$${key.toString('base64')}`;
  }

  /** True when `password` matches `stored`. A malformed `stored` never matches. */
  async verify(password: string, stored: string): Promise<boolean> {
    const parsed = parse(stored);
    if (parsed === undefined) {
      await this.verifyAgainstDummy(password);
      return false;
    }
    const key = await this.derive(password, parsed.salt, parsed.params, parsed.key.length);
    return timingSafeEqual(key, parsed.key);
  }

  /** The same work as `verify` against a hash no password matches; always false. */
  async verifyAgainstDummy(password: string): Promise<false> {
    this.dummy ??= this.hash(randomBytes(32).toString('base64'));
    const dummy = await this.dummy;
    const parsed = parse(dummy) as Parsed;
    const key = await this.derive(password, parsed.salt, parsed.params, parsed.key.length);
    timingSafeEqual(key, parsed.key);
    return false;
  }

  /** True when `stored` was made with weaker parameters than the current ones. */
  needsRehash(stored: string): boolean {
    const parsed = parse(stored);
    if (parsed === undefined) return true;
    const { logN, r, p } = parsed.params;
    return logN < this.params.logN || r < this.params.r || p < this.params.p;
  }

  private async derive(password: string, salt: Buffer, params: ScryptParams, length = KEY_LENGTH): Promise<Buffer> {
    const N = 2 ** params.logN;
    const options: ScryptOptions = { N, r: params.r, p: params.p, maxmem: 256 * N * params.r + 1_048_576 };
    const input = password.normalize('NFKC');
    try {
      return await this.pool.execute(
        () =>
          new Promise<Buffer>((resolve, reject) => {
            scrypt(input, salt, length, options, (error, key) => (error === null ? resolve(key) : reject(error)));
          }),
      );
    } catch (error) {
      if (isBulwarkError(error) && error.code === 'BULWARK_BULKHEAD_REJECTED') throw new AuthBusyError(error);
      throw error;
    }
  }
}

interface Parsed {
  params: ScryptParams;
  salt: Buffer;
  key: Buffer;
}

function parse(stored: string): Parsed | undefined {
  const m = typeof stored === 'string' ? FORMAT.exec(stored) : null;
  if (m === null) return undefined;
  const params = { logN: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  if (params.logN < 1 || params.logN > MAX_LOG_N || params.r < 1 || params.p < 1) return undefined;
  const salt = Buffer.from(m[4] as string, 'base64');
  const key = Buffer.from(m[5] as string, 'base64');
  if (salt.length < 8 || key.length < 16) return undefined;
  return { params, salt, key };
}
