import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { Message } from 'amqplib';
import { deliveryCountOf, ownHeaders, toDeadLetter, DEAD_LETTER_HEADERS, DELIVERIES_HEADER } from './headers.js';
import { deadLetterExchangeName, delayQueueName, groupQueueNames } from './topology.js';

function message(headers: Record<string, unknown>, redelivered = false): Message {
  return {
    content: Buffer.from('{}'),
    fields: { deliveryTag: 1, redelivered, exchange: 'e', routingKey: 't' },
    properties: { headers, messageId: 'id-1' } as unknown as Message['properties'],
  };
}

describe('rabbitmq names', () => {
  it('names the queues of (topic, group) without collisions', () => {
    assert.deepEqual(groupQueueNames('orders.confirmed', 'billing'), { queue: 'billing@orders.confirmed', deadLetterQueue: 'billing@orders.confirmed#dead' });
    assert.equal(delayQueueName('orders.confirmed', 'billing', 300), 'billing@orders.confirmed#delay.300ms');
    assert.equal(deadLetterExchangeName('bulwark.events'), 'bulwark.events.dead-letter');
  });

  it('refuses topics with wildcards and groups with separators', () => {
    for (const topic of ['', 'a.*', 'a.#']) assert.throws(() => groupQueueNames(topic, 'g'), TypeError);
    for (const group of ['', 'a@b', 'a#b', 'amq.x']) assert.throws(() => groupQueueNames('t', group), TypeError);
    assert.throws(() => groupQueueNames('t'.repeat(240), 'g'), RangeError);
  });
});

describe('rabbitmq headers', () => {
  it('counts deliveries across requeues and delayed copies', () => {
    assert.equal(deliveryCountOf(message({})), 1);
    assert.equal(deliveryCountOf(message({ 'x-delivery-count': 2 })), 3);
    assert.equal(deliveryCountOf(message({}, true)), 2);
    assert.equal(deliveryCountOf(message({ [DELIVERIES_HEADER]: 3 })), 4);
    assert.equal(deliveryCountOf(message({ [DELIVERIES_HEADER]: 3, 'x-delivery-count': 1 })), 5);
  });

  it('keeps only the message\'s own headers on a copy', () => {
    const own = ownHeaders({ trace: 'x', 'x-death': [], 'x-delivery-count': 1, [DELIVERIES_HEADER]: 2, [DEAD_LETTER_HEADERS.error]: 'e' });
    assert.deepEqual(own, { trace: 'x' });
  });

  it('reads a dead letter the transport set aside, or one RabbitMQ dead-lettered', () => {
    const ours = toDeadLetter(message({ [DEAD_LETTER_HEADERS.error]: 'boom', [DEAD_LETTER_HEADERS.deliveries]: 4 }), undefined);
    assert.deepEqual([ours.error, ours.deliveries, ours.messageId], ['boom', 4, 'id-1']);
    const broker = toDeadLetter(message({ 'x-first-death-reason': 'delivery_limit', [DELIVERIES_HEADER]: 2 }), 5);
    assert.match(broker.error, /x-delivery-limit/);
    assert.equal(broker.deliveries, 8);
    assert.equal(toDeadLetter(message({ 'x-first-death-reason': 'rejected' }), 5).deliveries, 0);
  });
});
