import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Offered, Tracker } from '../../src/tracker';

function setup() {
  const events: string[] = [];
  const t = new Tracker({
    shown: (item) => events.push(`shown ${(item as { id: string }).id}`),
    partiallyAccepted: (item, n) => events.push(`partial ${(item as { id: string }).id} ${n}`),
    dismissed: (item) => events.push(`dismissed ${(item as { id: string }).id}`),
  });
  return { t, events };
}

function offer(id: string, text: string, line = 1, character = 11): Offered {
  return { id, uri: 'file:///a.py', version: 1, line, character, text, item: { id } };
}

const insert = (line: number, character: number, text: string) => [
  { line, character, rangeLength: 0, text },
];

test('shown once per completion, typing through it is not a dismissal', () => {
  const { t, events } = setup();
  t.shown(offer('a', ' + b'));
  t.changed('file:///a.py', insert(1, 11, ' '));
  t.moved('file:///a.py', 1, 12);
  t.shown(offer('a', '+ b', 1, 12)); // asked again: the same completion's rest
  t.changed('file:///a.py', insert(1, 12, '+'));
  t.moved('file:///a.py', 1, 13);
  assert.deepEqual(events, ['shown a']);
});

test('a completion replaced by another one is dismissed', () => {
  const { t, events } = setup();
  t.shown(offer('a', ' + b'));
  t.shown(offer('b', ' - b'));
  assert.deepEqual(events, ['shown a', 'dismissed a', 'shown b']);
});

test('an edit that disagrees, a cursor that leaves, a closed document dismiss', () => {
  const { t, events } = setup();
  t.shown(offer('a', ' + b'));
  t.changed('file:///a.py', insert(1, 11, 'x'));
  t.shown(offer('b', ' + b'));
  t.moved('file:///a.py', 4, 0);
  t.shown(offer('c', ' + b'));
  t.closed('file:///a.py');
  assert.deepEqual(events, [
    'shown a',
    'dismissed a',
    'shown b',
    'dismissed b',
    'shown c',
    'dismissed c',
  ]);
});

test('accept word is a partial accept; an accepted completion is never dismissed', () => {
  const { t, events } = setup();
  t.shown(offer('a', ' + b\n    return c'));
  t.changed('file:///a.py', insert(1, 11, ' +')); // accept word
  t.moved('file:///a.py', 1, 13);
  t.changed('file:///a.py', insert(1, 13, ' b\n    return c')); // Tab: the rest
  t.accepted('a');
  t.moved('file:///a.py', 2, 12);
  t.closed('file:///a.py');
  assert.deepEqual(events, ['shown a', 'partial a 2']);
});

test('Tab: the edit then the command; nothing else reported', () => {
  const { t, events } = setup();
  t.shown(offer('a', ' + b'));
  t.changed('file:///a.py', insert(1, 11, ' + b'));
  t.accepted('a');
  t.shown(offer('b', '\n', 1, 15));
  assert.deepEqual(events, ['shown a', 'shown b']);
});

test('an offered item is shown when confirmed, even if typed through meanwhile', () => {
  const { t, events } = setup();
  t.offer(offer('a', 'rn a * b', 1, 8));
  t.changed('file:///a.py', insert(1, 8, 'r'));
  t.moved('file:///a.py', 1, 9);
  t.changed('file:///a.py', insert(1, 9, 'n'));
  t.moved('file:///a.py', 1, 10);
  t.confirm('file:///a.py', 'a');
  t.changed('file:///a.py', insert(1, 10, 'x')); // then disagrees: dismissed
  assert.deepEqual(events, ['shown a', 'dismissed a']);
});

test('an offered item contradicted before the confirmation is never reported', () => {
  const { t, events } = setup();
  t.offer(offer('a', ' + b'));
  t.changed('file:///a.py', insert(1, 11, 'x'));
  t.confirm('file:///a.py', 'a');
  t.offer(offer('b', ' + b'));
  t.moved('file:///a.py', 7, 0);
  t.confirm('file:///a.py', 'b');
  t.offer(offer('c', ' + b'));
  t.offer(offer('d', ' - b')); // a newer answer replaces it
  t.confirm('file:///a.py', 'c');
  assert.deepEqual(events, []);
});
