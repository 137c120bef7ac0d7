// MACs per layer from the shapes the model runs with, checked against PyTorch: forward hooks on
// the modules of a real torch.onnx.export (macs_reference.py) count output elements × inputs
// summed per element. The compressed model's MACs are checked against the hand formula
// P · g · k · (m/g + n) per factorized layer (P = output positions = dense MACs / (m·n)).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { compressToFile, planModel } from '../../../src/core/compress';
import { loadDataset, type Dataset } from '../../../src/core/eval/dataset';
import { measureMacs, planMacs, type MacsProfile } from '../../../src/core/eval/macs';
import { OrtRunner } from '../../../src/core/eval/runner';
import { openOnnx, type OnnxModel } from '../../../src/core/formats/onnx';
import { pythonHas, runPython } from '../../helpers/python';
import { tempDir } from '../formats/fixtures';

const hasTorch = pythonHas('torch', 'onnx');
const FRAMES = 20;
let dir: string;
let model: OnnxModel;
let reference: Record<string, number>;
let runner: OrtRunner;
let dataset: Dataset;

before(async () => {
  runner = OrtRunner.create({});
  if (!hasTorch) return;
  dir = tempDir('rankscope-macs-');
  runPython(readFileSync(join(__dirname, 'macs_reference.py'), 'utf8'), [dir, String(FRAMES)]);
  reference = JSON.parse(readFileSync(join(dir, 'macs.json'), 'utf8'));
  model = await openOnnx(join(dir, 'model.onnx'));
  const probe = await runner.open(model.path);
  dataset = await loadDataset({ data: join(dir, 'x.npy'), preset: 'none', labels: null }, probe.inputs);
  await probe.close();
});
after(async () => {
  await dataset?.close();
  await runner?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const skip = !hasTorch && 'no torch';

async function measured(m: OnnxModel): Promise<MacsProfile> {
  const r = await measureMacs(m, { runner, dataset });
  assert.ok(r.ok, r.ok ? '' : r.reason);
  return r;
}

test('per-layer MACs equal PyTorch\'s count (1×1 conv, grouped strided k×1 conv, MatMul, a shared Linear, Gemm)', { skip }, async () => {
  const r = await measured(model);
  assert.deepEqual(Object.fromEntries(r.layers.map((l) => [l.layer, l.macs])), reference);
  assert.equal(r.total, Object.values(reference).reduce((a, b) => a + b, 0));
  assert.equal(r.input.source, 'data');
  assert.deepEqual(r.input.shapes.x, [1, 3, FRAMES, 5]);
  assert.equal(r.layers.find((l) => l.layer === 'shared')!.uses.length, 2);
  assert.deepEqual(r.notes, []);
});

test('a symbolic frame axis without data: no figure, and the reason names the axis and the way out', { skip }, async () => {
  const r = await measureMacs(model, { runner });
  assert.equal(r.ok, false);
  assert.match(!r.ok ? r.reason : '', /symbolic dimension 'frames' at axis 2.*give data/);
});

test('a compressed model: each factor pair costs P·g·k·(m/g + n), as measured and as predicted from the plan', { skip }, async () => {
  const plan = await planModel(model, { rank: 2 });
  const out = join(dir, 'compressed.onnx');
  await compressToFile(model, plan, out);
  const compressed = await openOnnx(out);
  const r = await measured(compressed);
  let expectedTotal = 0;
  for (const l of model.layers) {
    const [m, n] = l.shape;
    const g = l.groups ?? 1;
    const positions = reference[l.name] / (m * n);
    const p = plan.layers.find((x) => x.layer === l.name)!;
    const expected = p.skipped ? reference[l.name] : positions * g * p.k * (m / g + n);
    assert.equal(r.layers.find((x) => x.layer === l.name)!.macs, expected, l.name);
    expectedTotal += expected;
  }
  assert.equal(plan.layers.filter((p) => !p.skipped).length, 5);
  assert.equal(r.total, expectedTotal);
  assert.ok(r.total < Object.values(reference).reduce((a, b) => a + b, 0) / 3);
  const original = await measured(model);
  assert.equal(planMacs(original, model.layers, plan), expectedTotal);
});

test('a Gather embedding costs no MACs; factorized, its lookup feeds a k×dim MatMul: lookups · k · dim', { skip: !pythonHas('onnx') && 'no onnx' }, async () => {
  const d = tempDir('rankscope-macs-gather-');
  try {
    // ids (N, 7) → Gather E [100, 16] → MatMul W [16, 8]: 0 + 7·16·8 MACs per sample.
    runPython(String.raw`
import sys, numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
rng = np.random.default_rng(0)
E = rng.standard_normal((100, 16)).astype(np.float32)
W = rng.standard_normal((16, 8)).astype(np.float32)
g = helper.make_graph([helper.make_node('Gather', ['E', 'ids'], ['e'], name='/embed/Gather'), helper.make_node('MatMul', ['e', 'W'], ['y'], name='/proj/MatMul')], 'g',
    [helper.make_tensor_value_info('ids', TensorProto.INT64, ['N', 7])], [helper.make_tensor_value_info('y', TensorProto.FLOAT, ['N', 7, 8])],
    [numpy_helper.from_array(E, 'E'), numpy_helper.from_array(W, 'W')])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]), sys.argv[1])
`, [join(d, 'g.onnx')]);
    const m = await openOnnx(join(d, 'g.onnx'));
    const r = await measureMacs(m, { runner });
    assert.ok(r.ok, r.ok ? '' : r.reason);
    assert.deepEqual(r.layers.map((l) => [l.layer, l.macs, l.applications]), [['embed', 0, 7], ['proj', 7 * 16 * 8, 7]]);
    const plan = await planModel(m, { rank: 4 });
    await compressToFile(m, plan, join(d, 'c.onnx'));
    const c = await measureMacs(await openOnnx(join(d, 'c.onnx')), { runner });
    assert.ok(c.ok);
    const expected = 7 * 4 * 16 + 7 * 4 * (16 + 8);
    assert.equal(c.total, expected);
    assert.equal(planMacs(r, m.layers, plan), expected);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
