/**
 * Opaque refresh tokens: 256 random bits, shown to the client once, stored
 * only as their SHA-256. A database leak gives an attacker hashes it cannot
 * turn back into tokens; 256 bits need no salt or slow hash (nobody guesses them).
 */
import { createHash, randomBytes } from 'node:crypto';

const PREFIX = 'rt_';
const FORMAT = /^rt_[A-Za-z0-9_-]{43}$/;

/** A new refresh token (`rt_` + 43 base64url characters). */
export function newRefreshToken(): string {
  return PREFIX + randomBytes(32).toString('base64url');
}

/** True when `value` has the shape of a refresh token (checked before any database work). */
export function isRefreshTokenShape(value: unknown): value is string {
  return typeof value === 'string' && FORMAT.test(value);
}

/** The stored form of a refresh token: its SHA-256, hex. */
export function hashRefreshToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
