import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { withStatementCache } from './statement-cache.js';

describe('SQLite statement cache', () => {
  it('prepares each SQL text once, never hands out a busy statement, and stays bounded', () => {
    const raw = new Database(':memory:');
    let prepared = 0;
    const prepare = raw.prepare.bind(raw);
    raw.prepare = ((sql: string) => {
      prepared++;
      return prepare(sql);
    });
    const db = withStatementCache(raw, 2);
    db.prepare('create table t (n integer)').run([]);
    const insert = db.prepare('insert into t values (?)');
    for (let n = 0; n < 5; n++) assert.equal(db.prepare('insert into t values (?)'), insert);
    for (let n = 0; n < 5; n++) insert.run([n]);
    assert.equal(prepared, 2);

    // A statement still iterating is busy: a second use of its SQL gets a fresh one.
    const select = db.prepare('select n from t order by n');
    const rows = select.iterate([]);
    rows.next();
    const again = db.prepare('select n from t order by n');
    assert.notEqual(again, select);
    assert.deepEqual(again.all([]), [{ n: 0 }, { n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }]);
    rows.return?.();
    assert.equal(db.prepare('select n from t order by n'), select);

    // Bounded: a third distinct text evicts the least recently used.
    const before = prepared;
    db.prepare('select count(*) as c from t');
    db.prepare('select max(n) as m from t');
    db.prepare('insert into t values (?)');
    assert.equal(prepared, before + 3);

    // A schema change under a cached statement: SQLite re-prepares it.
    const count = db.prepare('select * from t limit 1');
    raw.exec('alter table t add column extra text');
    assert.deepEqual(db.prepare('select * from t limit 1').all([]), [{ n: 0, extra: null }]);
    assert.equal(db.prepare('select * from t limit 1'), count);
    db.close();
  });
});
