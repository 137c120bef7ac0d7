// The webview IPC: descriptors, runtime checks of untrusted webview messages, HostEndpoint dispatch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HostEndpoint, IpcValidationError, is, type WireMessage } from '../../../webview/shared/ipc';
import { CompressAtRankRequest, DidSetSeriesNotification, ExportRequest, PickOverlayCommand } from '../../../webview/spectrum/protocol';
import { GetPlanRequest } from '../../../webview/tradeoff/protocol';
import { ShowInLayersCommand } from '../../../webview/overview/protocol';
import { CancelCommand } from '../../../webview/finetune/protocol';

function endpoint() {
  const posted: WireMessage[] = [];
  const invalid: string[] = [];
  const host = new HostEndpoint((m) => posted.push(m), (e) => invalid.push(e.message));
  return { host, posted, invalid };
}

test('checks accept valid values and drop unknown keys', () => {
  const check = is.object({ layer: is.string(), rank: is.number({ integer: true, min: 1 }), tag: is.optional(is.oneOf('a', 'b')) });
  assert.deepEqual(check({ layer: 'x', rank: 3, extra: '<script>' }, 'p'), { layer: 'x', rank: 3 });
  assert.deepEqual(check({ layer: 'x', rank: 3, tag: 'b' }, 'p'), { layer: 'x', rank: 3, tag: 'b' });
});

test('checks reject wrong types, ranges and sizes with the path in the message', () => {
  const check = is.object({ layer: is.string({ max: 5 }), rank: is.number({ integer: true, min: 1 }) });
  assert.throws(() => check({ layer: 'x', rank: 0 }, 'p'), (e: Error) => e instanceof IpcValidationError && /p\.rank/.test(e.message));
  assert.throws(() => check({ layer: 'x', rank: 1.5 }, 'p'), /p\.rank: expected integer/);
  assert.throws(() => check({ layer: 'x', rank: Number.NaN }, 'p'), /p\.rank/);
  assert.throws(() => check({ layer: 'toolong', rank: 2 }, 'p'), /p\.layer: expected string ≤ 5/);
  assert.throws(() => check(null, 'p'), /p: expected object, got null/);
  assert.throws(() => check([1], 'p'), /expected object, got array/);
  assert.throws(() => is.array(is.number())([1, 'a'], 'xs'), /xs\[1\]/);
});

test('a valid command reaches its handler with checked params', async () => {
  const { host, invalid } = endpoint();
  const got: unknown[] = [];
  host.onCommand(ShowInLayersCommand, (p) => { got.push(p); });
  await host.receive({ type: 'command', method: 'overview/showInLayers', params: { layer: 'enc.<b>0</b>', junk: 1 } });
  assert.deepEqual(got, [{ layer: 'enc.<b>0</b>' }]);
  assert.deepEqual(invalid, []);
});

test('a request gets its handler\'s result as the reply, or the thrown message as error', async () => {
  const { host, posted } = endpoint();
  host.onRequest(CompressAtRankRequest, async (p) => {
    if (p.rank > 100) throw new Error(`rank ${p.rank} exceeds min(m, n) for ${p.layer}`);
    return { file: '/m.rankscope.onnx', paramsBefore: 100, paramsAfter: 40, energyKept: 0.9 };
  });
  await host.receive({ type: 'request', id: 7, method: CompressAtRankRequest.method, params: { layer: 'a', rank: 4 } });
  await host.receive({ type: 'request', id: 8, method: CompressAtRankRequest.method, params: { layer: 'a', rank: 400 } });
  assert.deepEqual(posted, [
    { type: 'response', id: 7, result: { file: '/m.rankscope.onnx', paramsBefore: 100, paramsAfter: 40, energyKept: 0.9 } },
    { type: 'response', id: 8, error: 'rank 400 exceeds min(m, n) for a' },
  ]);
});

test('invalid and unknown messages never reach a handler; invalid requests are answered with an error', async () => {
  const { host, posted, invalid } = endpoint();
  let calls = 0;
  host.onRequest(GetPlanRequest, () => { calls++; return undefined as never; });
  host.onCommand(CancelCommand, () => { calls++; });
  await host.receive({ type: 'request', id: 1, method: 'tradeoff/getPlan', params: { pointId: 42 } });
  await host.receive({ type: 'request', id: 2, method: 'tradeoff/deleteEverything', params: {} });
  await host.receive({ type: 'command', method: 'tradeoff/getPlan', params: { pointId: 'x' } }); // request sent as command
  await host.receive({ type: 'notification', method: 'finetune/cancel', params: {} }); // wrong direction
  await host.receive('finetune/cancel');
  await host.receive(null);
  await host.receive({ type: 'request', method: 'tradeoff/getPlan', params: { pointId: 'x' } }); // no id
  assert.equal(calls, 0);
  assert.equal(invalid.length, 7);
  assert.deepEqual(posted.map((m) => m.type === 'response' && m.id), [1, 2]);
  assert.match((posted[0] as { error: string }).error, /pointId: expected string/);
  assert.match((posted[1] as { error: string }).error, /unknown request 'tradeoff\/deleteEverything'/);
});

test('the export request refuses an unknown format before the host writes anything', async () => {
  const { host, posted } = endpoint();
  let wrote = false;
  host.onRequest(ExportRequest, () => { wrote = true; return { saved: '/x' }; });
  await host.receive({ type: 'request', id: 3, method: ExportRequest.method, params: { format: 'exe', suggestedName: 'a', contents: '', encoding: 'utf8' } });
  assert.equal(wrote, false);
  assert.match((posted[0] as { error: string }).error, /format: expected one of png\|svg\|csv/);
});

test('commands without params accept {} and undefined; notifications are sent in the wire format', async () => {
  const { host, posted } = endpoint();
  let n = 0;
  host.onCommand(PickOverlayCommand, () => { n++; });
  await host.receive({ type: 'command', method: PickOverlayCommand.method });
  await host.receive({ type: 'command', method: PickOverlayCommand.method, params: {} });
  assert.equal(n, 2);
  host.notify(DidSetSeriesNotification, { series: [] });
  assert.deepEqual(posted, [{ type: 'notification', method: 'spectrum/didSetSeries', params: { series: [] } }]);
});

test('dispose aborts the signal handed to running requests', async () => {
  const { host, posted } = endpoint();
  host.onRequest(GetPlanRequest, (_p, signal) => new Promise((_, reject) => {
    signal.addEventListener('abort', () => reject(new Error('Cancelled.')));
  }));
  const done = host.receive({ type: 'request', id: 9, method: GetPlanRequest.method, params: { pointId: 'p' } });
  host.dispose();
  await done;
  assert.deepEqual(posted, [{ type: 'response', id: 9, error: 'Cancelled.' }]);
});
