import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { decodeHeaderText, encodeHeaderText } from './dead-letters.js';
import { assertValidTopic, groupConsumerName, natsSafeName, topicStreamName } from './nats-names.js';
import { resolveNatsOptions } from './nats-options.js';

describe('NATS names', () => {
  it('keeps simple names readable', () => {
    assert.equal(natsSafeName('orders.confirmed'), 'orders_confirmed');
    assert.equal(topicStreamName('orders.confirmed', 'BULWARK_'), 'BULWARK_orders_confirmed');
    assert.equal(groupConsumerName('group-1'), 'group-1');
  });

  it('never maps two names to one', () => {
    const inputs = ['a.b', 'a_b', 'a b', 'a/b', 'a-b', 'a.b_', 'a._b', 'a_.b', 'é.b', 'a.b.c', 'a_b.c'];
    const mapped = inputs.map(natsSafeName);
    assert.equal(new Set(mapped).size, inputs.length, mapped.join(' '));
    for (const name of mapped) assert.match(name, /^[A-Za-z0-9_-]+$/);
  });

  it('bounds long names', () => {
    const long = natsSafeName('x.'.repeat(200) + 'y');
    assert.ok(long.length <= 96);
    assert.notEqual(long, natsSafeName('x.'.repeat(200) + 'z'));
  });

  it('accepts literal subjects only as topics', () => {
    assert.doesNotThrow(() => assertValidTopic('orders.confirmed'));
    for (const bad of ['', 'a..b', 'a.', '*', 'a.>', 'a b', 'a\tb']) assert.throws(() => assertValidTopic(bad), TypeError, bad);
  });
});

describe('NATS options', () => {
  it('has the documented defaults', () => {
    const o = resolveNatsOptions({ servers: '127.0.0.1:4222' });
    assert.deepEqual(
      [o.servers, o.streamPrefix, o.subjectPrefix, o.deadLetterSubjectPrefix, o.duplicateWindowMs, o.pullExpiresMs],
      [['127.0.0.1:4222'], 'BULWARK_', '', 'dlq.', 120_000, 10_000],
    );
    assert.equal(resolveNatsOptions({ servers: 'x', subjectPrefix: 'app.' }).deadLetterSubjectPrefix, 'app.dlq.');
  });

  it('rejects unusable prefixes and values', () => {
    assert.throws(() => resolveNatsOptions({ servers: 'x', streamPrefix: 'A.B' }), TypeError);
    assert.throws(() => resolveNatsOptions({ servers: 'x', subjectPrefix: 'app' }), TypeError);
    assert.throws(() => resolveNatsOptions({ servers: 'x', pullExpiresMs: 500 }), RangeError);
    assert.throws(() => resolveNatsOptions({ servers: [] }), TypeError);
  });
});

describe('dead-letter header text', () => {
  it('round-trips any text through a header-safe form', () => {
    for (const text of ['plain', 'line 1\nline 2\r\n', ' padded ', '100%', '%0A literal', 'tab\there', 'ünïcode ✓', '\u2028line sep\u2028']) {
      const encoded = encodeHeaderText(text);
      assert.doesNotMatch(encoded, /[\r\n]/);
      assert.equal(encoded, encoded.trim());
      assert.equal(decodeHeaderText(encoded), text);
    }
    assert.equal(encodeHeaderText('handler failed: boom'), 'handler failed: boom');
  });
});
