import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { DEFAULTS, serverCommand, serverSettings, statusText } from '../../src/settings';

test('the server command: configured, bundled, or on PATH; threads and extra arguments', () => {
  assert.deepEqual(serverCommand(DEFAULTS, undefined), { command: 'moat', args: ['lsp'] });
  assert.equal(serverCommand(DEFAULTS, '/ext/bin/moat').command, '/ext/bin/moat');
  const c = { ...DEFAULTS, serverPath: ' /opt/moat ', threads: 8, serverArgs: ['--log-file', '/tmp/l'] };
  assert.deepEqual(serverCommand(c, '/ext/bin/moat'), {
    command: '/opt/moat',
    args: ['lsp', '--threads', '8', '--log-file', '/tmp/l'],
  });
});

test('server settings use the server names and leave out what is unset', () => {
  const s = serverSettings({ ...DEFAULTS, languages: ['python'], model: 'qwen2.5-coder-1.5b-instruct' });
  assert.deepEqual(s, {
    enabled: true,
    contextBudget: 1536,
    debounceMs: 75,
    telemetry: true,
    device: 'auto',
    adapter: null,
    adapterForce: false,
    model: 'qwen2.5-coder-1.5b-instruct',
    languages: ['python'],
  });
  assert.equal('model' in serverSettings(DEFAULTS), false);
  const a = serverSettings({ ...DEFAULTS, adapter: ' payments ', adapterForce: true });
  assert.equal(a.adapter, 'payments');
  assert.equal(a.adapterForce, true);
});

test('status bar states', () => {
  assert.equal(statusText(undefined, false).label, 'moat: not running');
  assert.equal(statusText({ model: { state: 'loading' } }, true).label, 'moat: loading model');
  assert.equal(statusText({ model: { state: 'failed' } }, true).label, 'moat: model failed');
  assert.equal(
    statusText({ model: { state: 'ready' }, index: { state: 'indexing', files: 12 } }, true).label,
    'moat: indexing (12 files)',
  );
  assert.equal(statusText({ model: { state: 'ready' }, index: { state: 'ready' } }, true).label, 'moat: ready');
  assert.equal(
    statusText({ model: { state: 'ready' }, settings: { enabled: false } }, true).label,
    'moat: off',
  );
  assert.equal(
    statusText({ model: { state: 'ready' }, adapter: { state: 'active', name: 'payments' } }, true).text,
    '$(check) moat+payments',
  );
  assert.equal(
    statusText({ model: { state: 'ready' }, adapter: { state: 'failed', name: 'payments' } }, true).label,
    'moat: ready, adapter payments not served',
  );
});
