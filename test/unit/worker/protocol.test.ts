// The protocol's line parser, the TS safetensors container against the Python worker's reader,
// and the worker's NTU preset against src/core/eval/ntu.ts (they must resample identically).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ntuToModel } from '../../../src/core/eval/ntu';
import { encodeClientMessage, parseWorkerLine } from '../../../src/worker/protocol';
import { readSafetensors, writeSafetensors } from '../../../src/worker/safetensors';
import { pythonHas, runPython } from '../../helpers/python';

const hasNumpy = pythonHas('numpy');
const dir = mkdtempSync(join(tmpdir(), 'rankscope-protocol-'));

test('parseWorkerLine accepts protocol messages only', () => {
  assert.deepEqual(parseWorkerLine('{"type":"log","level":"info","message":"hi"}\n'), { type: 'log', level: 'info', message: 'hi' });
  assert.equal(parseWorkerLine('{"type":"surprise"}'), undefined);
  assert.equal(parseWorkerLine('Traceback (most recent call last):'), undefined);
  assert.equal(parseWorkerLine('{"type":"log",'), undefined);
  assert.equal(encodeClientMessage({ type: 'cancel' }), '{"type":"cancel"}\n');
});

test('safetensors written by TypeScript read in Python (and back) keep names, dtypes, shapes and bytes', { skip: !hasNumpy && 'needs numpy' }, async () => {
  const path = join(dir, 'a.safetensors');
  const f32 = Float32Array.from([1.5, -2, 3.25, 0, 7, 8]);
  const i64 = BigInt64Array.from([1n, -2n, 3n]);
  await writeSafetensors(path, [
    ['w', { dtype: 'float32', shape: [2, 3], bytes: new Uint8Array(f32.buffer) }],
    ['scalar', { dtype: 'int64', shape: [], bytes: new Uint8Array(BigInt64Array.from([42n]).buffer) }],
    ['idx', { dtype: 'int64', shape: [3], bytes: new Uint8Array(i64.buffer) }],
  ]);
  const out = join(dir, 'b.safetensors');
  const seen = runPython(`import sys; sys.path.insert(0, 'src/worker/python')
from rankscope_worker import safetensors
t, _ = safetensors.read(sys.argv[1])
print({k: (c, list(a.shape), a.tolist()) for k, (c, a) in sorted(t.items())})
safetensors.write(sys.argv[2], {k: (c, a * 2) for k, (c, a) in t.items()})`, [path, out]);
  assert.equal(seen.trim(), `{'idx': ('I64', [3], [1, -2, 3]), 'scalar': ('I64', [], 42), 'w': ('F32', [2, 3], [[1.5, -2.0, 3.25], [0.0, 7.0, 8.0]])}`);
  const back = await readSafetensors(out);
  assert.deepEqual(back.get('w')!.shape, [2, 3]);
  assert.deepEqual([...new Float32Array(back.get('w')!.bytes.slice().buffer)], [...f32].map((v) => v * 2));
  assert.deepEqual(back.get('scalar')!.shape, []);
});

test('the worker\'s NTU preset equals src/core/eval/ntu.ts bit for bit (linear and uniform)', { skip: !hasNumpy && 'needs numpy' }, () => {
  // 3 clips of 60 stored frames with 60, 41 and 0 valid frames.
  const frames = 60;
  const x = new Float32Array(3 * frames * 150);
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  for (let t = 0; t < frames; t++) for (let j = 0; j < 150; j++) x[t * 150 + j] = rand();
  for (let t = 0; t < 41; t++) for (let j = 0; j < 150; j++) x[(frames + t) * 150 + j] = rand();
  for (const resample of ['linear', 'uniform'] as const) {
    for (const T of [16, 64]) {
      const ts = ntuToModel(x, 3, frames, { frames: T, resample });
      const hex = runPython(`import sys, numpy as np; sys.path.insert(0, 'src/worker/python')
from rankscope_worker.data import ntu_to_model
x = np.frombuffer(bytes.fromhex(sys.stdin.read()), np.float32).reshape(3, ${frames}, 150)
sys.stdout.write(ntu_to_model(x, ${T}, 0.95, '${resample}').tobytes().hex())`, [], Buffer.from(x.buffer).toString('hex'));
      const b = Buffer.from(hex, 'hex');
      const py = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
      assert.equal(py.length, ts.length);
      let diff = 0;
      for (let i = 0; i < ts.length; i++) if (!Object.is(py[i], ts[i])) diff++;
      assert.equal(diff, 0, `${resample} T=${T}: ${diff} values differ`);
    }
  }
});
