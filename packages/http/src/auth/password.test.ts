import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PasswordHasher, DEFAULT_SCRYPT_PARAMS } from './password.js';
import { AuthBusyError, AuthConfigError } from './errors.js';

describe('PasswordHasher', () => {
  const fast = new PasswordHasher({ params: { logN: 10 } });

  it('hashes with a random salt, stores its parameters, and verifies', async () => {
    const a = await fast.hash('correct horse battery');
    const b = await fast.hash('correct horse battery');
    assert.notEqual(a, b, 'salted');
    assert.match(a, /^scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    assert.equal(await fast.verify('correct horse battery', a), true);
    assert.equal(await fast.verify('correct horse batterz', a), false);
    assert.equal(await fast.verify('', a), false);
  });

  it('defaults to N = 2^15, r = 8, p = 1', async () => {
    assert.deepEqual({ ...DEFAULT_SCRYPT_PARAMS }, { logN: 15, r: 8, p: 1 });
    const hasher = new PasswordHasher();
    const hash = await hasher.hash('a reasonable password');
    assert.match(hash, /^scrypt\$ln=15,r=8,p=1\$/);
    assert.equal(await hasher.verify('a reasonable password', hash), true);
  });

  it('verifies a hash made with other parameters (read from the hash) and says it needs a rehash', async () => {
    const strong = new PasswordHasher({ params: { logN: 12 } });
    const old = await fast.hash('pw-pw-pw-pw');
    assert.equal(await strong.verify('pw-pw-pw-pw', old), true);
    assert.equal(strong.needsRehash(old), true);
    assert.equal(strong.needsRehash(await strong.hash('pw-pw-pw-pw')), false);
  });

  it('never matches a malformed or hostile stored hash', async () => {
    for (const stored of ['', 'plain', 'scrypt$ln=10,r=8,p=1$$', 'scrypt$ln=40,r=8,p=1$c2FsdHNhbHQ=$a2V5a2V5a2V5a2V5a2V5a2V5', 'bcrypt$2b$10$abc']) {
      assert.equal(await fast.verify('anything', stored), false, stored);
    }
  });

  it('the dummy verification is always false and does the same scrypt work', async () => {
    assert.equal(await fast.verifyAgainstDummy('whatever'), false);
  });

  it('refuses new work when its concurrency and queue are full (503 auth-busy)', async () => {
    const tiny = new PasswordHasher({ params: { logN: 14 }, maxConcurrent: 1, maxQueue: 0 });
    const results = await Promise.allSettled([tiny.hash('password-1'), tiny.hash('password-2')]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const rejected = results.find((r) => r.status === 'rejected');
    assert.ok(rejected?.status === 'rejected' && rejected.reason instanceof AuthBusyError);
    assert.equal((rejected.reason).toProblem().status, 503);
  });

  it('refuses weak or absurd parameters at construction', () => {
    for (const params of [{ logN: 8 }, { logN: 21 }, { r: 0 }, { p: 17 }, { logN: 14.5 }]) {
      assert.throws(() => new PasswordHasher({ params }), (e: unknown) => e instanceof AuthConfigError, JSON.stringify(params));
    }
  });
});
