import { strict as assert } from 'node:assert';
import { after, describe, it } from 'node:test';
import { CompiledQuery } from 'kysely';
import pg from 'pg';
import fc from 'fast-check';
import { inlineParameters, quote } from './commit-writes.js';
import { testPostgresUrl } from './testing/databases.js';

describe('commit writes: parameters inlined as literals (PostgreSQL)', () => {
  const client = new pg.Client({ connectionString: testPostgresUrl });
  after(() => client.end());

  it('reads back every parameter type exactly as the same query with bound parameters does', async () => {
    await client.connect();
    await client.query(`create temporary table inline_types (t text, i integer, b bigint, f double precision, ok boolean, at timestamptz, doc jsonb, bytes bytea, tags text[], nothing text)`);
    const values: unknown[] = [
      "quote ' backslash \\ dollar $1 newline \n nul-free ünï 🚀",
      -2147483648,
      9007199254740993n,
      0.1 + 0.2,
      false,
      new Date('2026-11-23T19:00:00.123Z'),
      { nested: { quote: "it's", list: [1, 'two', null] } },
      Buffer.from([0, 1, 2, 0xfe, 0xff, 0x5c]),
      ['a', "b'c", 'd\\e', null],
      null,
    ];
    const insert = `insert into inline_types values (${values.map((_, i) => `$${i + 1}`).join(', ')})`;
    await client.query(insert, values);
    const inlined = inlineParameters(CompiledQuery.raw(insert, values));
    await client.query(inlined);
    const { rows } = await client.query<{ b: string; bytes: Buffer }>('select * from inline_types');
    assert.equal(rows.length, 2);
    assert.deepEqual(rows[1], rows[0]);
    assert.equal(rows[1]!.b, '9007199254740993');
    assert.deepEqual(rows[1]!.bytes, values[7]);
  });

  it('quotes strings exactly as pg.escapeLiteral does', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('a', "'", '\\', '"', 'é', '$', '\n', ' ', 'E') }), (text) => quote(text) === pg.escapeLiteral(text)),
      { numRuns: 2_000 },
    );
    fc.assert(fc.property(fc.string({ unit: 'grapheme' }), (text) => quote(text) === pg.escapeLiteral(text)));
  });

  it('refuses what it cannot write faithfully', () => {
    assert.throws(() => inlineParameters(CompiledQuery.raw('select $1', [Number.NaN])), /cannot inline/);
    assert.throws(() => inlineParameters(CompiledQuery.raw('select $2', [1])), /no parameter for \$2/);
  });
});
