// Every op the worker supports, at opsets 13–18 and with the attribute forms PyTorch exports
// (axes as inputs, auto_pad, asymmetric pads, negative steps/indices, broadcasting…): one
// single-op model each (test/python/op_cases.py), exported by graphExport.ts, run by the
// executor (interpreted, then replayed), compared with ONNX Runtime: |Δ| ≤ 1e-4 + 1e-4·|ORT|.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openOnnx } from '../../../src/core/formats/onnx';
import { OrtRunner } from '../../../src/core/eval/runner';
import { exportGraph } from '../../../src/worker/graphExport';
import { readSafetensors, type SafeTensor } from '../../../src/worker/safetensors';
import { pythonHas, runPython } from '../../helpers/python';

const hasTorch = pythonHas('torch', 'numpy', 'onnx');
const dir = mkdtempSync(join(tmpdir(), 'rankscope-ops-'));

function values(t: SafeTensor): number[] {
  const b = t.bytes.slice().buffer;
  switch (t.dtype) {
    case 'float32': return [...new Float32Array(b)];
    case 'int64': return [...new BigInt64Array(b)].map(Number);
    case 'bool': return [...new Uint8Array(b)];
    default: throw new Error(`dtype ${t.dtype}`);
  }
}

function wire(t: SafeTensor) {
  const b = t.bytes.slice().buffer;
  const data = t.dtype === 'float32' ? new Float32Array(b) : t.dtype === 'int64' ? new BigInt64Array(b) : new Uint8Array(b);
  return { type: t.dtype, dims: t.shape, data };
}

test('single-op models: executor (via the TS export) vs ONNX Runtime', { skip: !hasTorch && 'needs torch + onnx in the test Python' }, async () => {
  const names = JSON.parse(runPython(`import runpy, sys; sys.argv = ['op_cases.py', sys.argv[1]]; sys.path.insert(0, 'test/python'); runpy.run_path('test/python/op_cases.py', run_name='__main__')`, [dir])) as string[];
  for (const name of names) await exportGraph(await openOnnx(join(dir, `${name}.onnx`)), dir, name);
  const crashed = JSON.parse(runPython(`import sys, json, numpy as np, torch; sys.path.insert(0, 'src/worker/python')
from rankscope_worker import safetensors
from rankscope_worker.executor import OnnxModule, load_graph, to_torch, to_numpy
bad = {}
for name in sys.argv[2:]:
    try:
        graph, tensors = load_graph(f'{sys.argv[1]}/{name}.graph.json')
        m = OnnxModule(graph, tensors).eval()
        feeds, _ = safetensors.read(f'{sys.argv[1]}/{name}.inputs.safetensors')
        xs = [to_torch(*feeds[i['name']]) for i in graph['inputs']]
        with torch.no_grad():
            first = m(*xs)
            outs = m(*xs)
        for a, b in zip(first, outs):
            assert torch.equal(a, b), 'replay differs from the interpreted run'
        safetensors.write(f'{sys.argv[1]}/{name}.ours.safetensors', {o: to_numpy(t) for o, t in zip(m.output_names, outs)})
    except Exception as e:
        bad[name] = f'{type(e).__name__}: {e}'
print(json.dumps(bad))`, [dir, ...names])) as Record<string, string>;
  assert.deepEqual(crashed, {});
  const runner = OrtRunner.create({ intraOpThreads: 1 });
  const failures: string[] = [];
  try {
    for (const name of names) {
      const feeds = await readSafetensors(join(dir, `${name}.inputs.safetensors`));
      const session = await runner.open(join(dir, `${name}.onnx`));
      const ort = await session.run(Object.fromEntries([...feeds].map(([k, t]) => [k, wire(t)])));
      const ours = await readSafetensors(join(dir, `${name}.ours.safetensors`));
      for (const [out, ref] of Object.entries(ort)) {
        const mine = ours.get(out);
        if (!mine) { failures.push(`${name}: no output ${out}`); continue; }
        if (mine.shape.join(',') !== ref.dims.join(',')) { failures.push(`${name}: shape [${mine.shape}] vs ORT [${ref.dims}]`); continue; }
        const want = Array.from(ref.data as ArrayLike<number | bigint>, (v) => (typeof v === 'bigint' ? Number(v) : typeof v === 'boolean' ? Number(v) : v));
        const got = values(mine);
        const worst = want.reduce((m, w, i) => Math.max(m, Math.abs(got[i] - w) - 1e-4 * Math.abs(w)), 0);
        if (!(worst <= 1e-4)) failures.push(`${name}: max error ${worst}`);
      }
      await session.close();
    }
  } finally {
    await runner.dispose();
  }
  console.log(`single-op cases vs ONNX Runtime: ${names.length - failures.length}/${names.length} pass`);
  assert.deepEqual(failures, []);
  assert.ok(names.length >= 80);
});
