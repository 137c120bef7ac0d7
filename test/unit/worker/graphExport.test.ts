// The TypeScript graph export (ONNX → graph JSON + safetensors) feeding the Python executor:
// every pytorch-converted / pytorch-operator case of ONNX's test data against its expected
// outputs, and whole PyTorch-exported networks (Transformer encoder, skeleton GCN+attention;
// opsets 13 and 17) against ONNX Runtime, max abs diff ≤ 1e-4 in float32.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openOnnx } from '../../../src/core/formats/onnx';
import { OrtRunner } from '../../../src/core/eval/runner';
import { exportGraph } from '../../../src/worker/graphExport';
import { readSafetensors } from '../../../src/worker/safetensors';
import { pythonHas, runPython } from '../../helpers/python';

const hasTorch = pythonHas('torch', 'numpy', 'onnx');
const TESTDATA = existsSync('../shared/onnx-testdata') ? '../shared/onnx-testdata' : '/work/shared/onnx-testdata';
/** Float32 values from hex text (a copy: small Buffers are views into a shared pool). */
function f32FromHex(hex: string): Float32Array {
  const b = Buffer.from(hex, 'hex');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

const dir = mkdtempSync(join(tmpdir(), 'rankscope-graph-'));

test('exported graphs run every onnx-testdata case within 1e-4 of the expected outputs', { skip: (!hasTorch || !existsSync(TESTDATA)) && 'needs torch + onnx and ../shared/onnx-testdata' }, async () => {
  const list: [string, string][] = [];
  for (const suite of ['pytorch-converted', 'pytorch-operator']) {
    for (const name of readdirSync(join(TESTDATA, suite)).sort()) {
      const caseDir = join(TESTDATA, suite, name);
      if (!existsSync(join(caseDir, 'model.onnx'))) continue;
      const exported = await exportGraph(await openOnnx(join(caseDir, 'model.onnx')), join(dir, 'cases'), name);
      list.push([exported.graph, caseDir]);
    }
  }
  writeFileSync(join(dir, 'cases.json'), JSON.stringify(list));
  const result = JSON.parse(runPython(`import runpy, sys; sys.argv = ['check_cases.py', sys.argv[1]]; sys.path.insert(0, 'test/python'); runpy.run_path('test/python/check_cases.py', run_name='__main__')`, [join(dir, 'cases.json')]));
  console.log(`onnx-testdata through graphExport: ${result.passed.length} passed, ${result.skipped.length} skipped, ${result.failed.length} failed`);
  assert.deepEqual(result.failed, []);
  assert.equal(result.passed.length + result.skipped.length, list.length);
  assert.ok(result.passed.length >= 100, `only ${result.passed.length} cases ran`);
});

test('whole PyTorch-exported models: executor vs ONNX Runtime, max |Δ| ≤ 1e-4', { skip: !hasTorch && 'needs torch + onnx' }, async () => {
  const cases = ['transformer', 'skeleton'].flatMap((kind) => [13, 17].map((opset) => ({ kind, opset, name: `${kind}${opset}` })));
  // One Python run builds all models and inputs, one runs all exported graphs (torch imports are slow).
  runPython(`import sys; sys.path.insert(0, 'test/python'); sys.path.insert(0, 'src/worker/python')
import numpy as np, torch_models as models
for kind, opset, base in zip(sys.argv[1::3], sys.argv[2::3], sys.argv[3::3]):
    models.export(models.build(kind), kind, base + '.onnx', int(opset))
    np.save(base + '.in.npy', models.example_input(kind, batch=6, seed=5).numpy())`, cases.flatMap((c) => [c.kind, String(c.opset), join(dir, c.name)]));
  const graphs: string[] = [];
  for (const c of cases) {
    const exported = await exportGraph(await openOnnx(join(dir, `${c.name}.onnx`)), dir, c.name);
    assert.equal(exported.json.opset, c.opset);
    graphs.push(exported.graph);
  }
  const outputs = JSON.parse(runPython(`import sys, json, numpy as np, torch; sys.path.insert(0, 'src/worker/python')
from rankscope_worker.executor import OnnxModule, load_graph
res = []
for graph, base in zip(sys.argv[1::2], sys.argv[2::2]):
    m = OnnxModule(*load_graph(graph)).eval()
    x = np.load(base + '.in.npy')
    with torch.no_grad():
        y = m(torch.from_numpy(x))[0].numpy()
    res.append({'shape': list(x.shape), 'x': x.astype(np.float32).tobytes().hex(), 'y': y.astype(np.float32).tobytes().hex()})
print(json.dumps(res))`, cases.flatMap((c, i) => [graphs[i], join(dir, c.name)]))) as { shape: number[]; x: string; y: string }[];
  const runner = OrtRunner.create({ intraOpThreads: 1 });
  try {
    for (const [i, c] of cases.entries()) {
      const session = await runner.open(join(dir, `${c.name}.onnx`));
      const ort = (await session.run({ input: { type: 'float32', dims: outputs[i].shape, data: f32FromHex(outputs[i].x) } })).logits.data as Float32Array;
      const ours = f32FromHex(outputs[i].y);
      assert.equal(ours.length, ort.length);
      let max = 0;
      for (let k = 0; k < ort.length; k++) max = Math.max(max, Math.abs(ours[k] - ort[k]));
      console.log(`${c.kind} opset ${c.opset}: max |executor − ORT| = ${max.toExponential(2)} over ${ort.length} logits`);
      assert.ok(max <= 1e-4, `${c.kind} opset ${c.opset}: ${max}`);
      await session.close();
    }
  } finally {
    await runner.dispose();
  }
});

test('graph JSON carries attributes typed, Constant tensors by reference, metadata and only non-initializer inputs', { skip: !hasTorch && 'needs torch + onnx' }, async () => {
  const model = join(dir, 'transformer17.onnx');
  if (!existsSync(model)) return; // produced by the previous test
  const { json, weights } = await exportGraph(await openOnnx(model), join(dir, 'again'), 'm');
  assert.deepEqual(json.inputs.map((i) => i.name), ['input']);
  assert.deepEqual(json.inputs[0].shape, ['batch', 16, 24]);
  const ln = json.nodes.find((n) => n.op === 'LayerNormalization')!;
  assert.equal(typeof ln.attrs.epsilon, 'number');
  assert.ok(Math.abs((ln.attrs.epsilon as number) - 1e-5) < 1e-9);
  const constant = json.nodes.find((n) => n.op === 'Constant')!;
  const ref = (constant.attrs.value as { tensor: string }).tensor;
  const tensors = await readSafetensors(weights);
  assert.ok(tensors.has(ref), 'Constant values are stored in the safetensors file');
  for (const name of json.initializers) assert.ok(tensors.has(name));
  assert.equal(JSON.parse(readFileSync(join(dir, 'again', 'm.graph.json'), 'utf8')).format, 'rankscope-graph');
});

test('lowrankFactors lists the factor tensors the fixture wrote (what trainable = lowrank trains), none for a dense model', { skip: !hasTorch && 'needs torch + onnx' }, async () => {
  const out = join(dir, 'lowrank');
  const built = JSON.parse(runPython(`import sys, json; sys.path.insert(0, 'test/python'); import fixtures; print(json.dumps(fixtures.build(sys.argv[1], 2)))`, [out])) as { factors: string[] };
  assert.equal(built.factors.length, 4);
  const compressed = await exportGraph(await openOnnx(join(out, 'compressed.onnx')), out, 'compressed');
  assert.deepEqual([...compressed.json.lowrankFactors].sort(), [...built.factors].sort());
  const original = await exportGraph(await openOnnx(join(out, 'original.onnx')), out, 'original');
  assert.deepEqual(original.json.lowrankFactors, []);
});
