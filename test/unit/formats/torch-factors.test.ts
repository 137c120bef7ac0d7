// Compressing a PyTorch checkpoint writes factors; rankscope_torch.apply_factors puts them into the
// user's nn.Module. Checked end to end against the ONNX path: the same models (a Transformer
// encoder, a skeleton model with a grouped conv) exported with torch.onnx.export and compressed at
// the same ranks give, in ONNX Runtime, the outputs PyTorch gives after apply_factors (1e-5), and
// factorize(model, plan) in memory agrees too (torch.linalg.svd instead of our SVD).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { main } from '../../../src/cli/main';
import { readSafetensors } from '../../../src/core/formats/safetensors';
import { openModel } from '../../../src/core/formats';
import { pythonHas, runPython } from '../../helpers/python';
import { runModel, tempDir } from './fixtures';

const hasTorch = pythonHas('torch', 'onnx', 'numpy');
const skip = !hasTorch && 'needs torch, onnx and numpy under the test Python';
const WORKER_PY = join(__dirname, '..', '..', '..', 'src', 'worker', 'python');
const SCRIPT = () => readFileSync(join(__dirname, 'torch_factors.py'), 'utf8');
let dir: string;
let ref: Record<string, { input: number[]; shape: number[]; dtype: string; dense: number[] }>;
let applied: Record<string, { applied: number[]; factorized: number[]; params: number; stateKeysMatchFile: boolean; kinds: Record<string, string>; planModelParamsAfter: number }>;
const onnxOut: Record<string, Float32Array> = {};
const lines: string[] = [];

async function cli(...args: string[]): Promise<number> {
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string) => { lines.push(String(s)); return true; }) as typeof process.stdout.write;
  try {
    return await main(args);
  } finally {
    process.stdout.write = write;
  }
}

before(async () => {
  if (!hasTorch) return;
  dir = tempDir('rankscope-ptfactors-');
  runPython(SCRIPT(), ['build', dir, WORKER_PY, __dirname]);
  ref = JSON.parse(readFileSync(join(dir, 'inputs.json'), 'utf8'));
  for (const name of ['encoder', 'skeleton']) {
    assert.equal(await cli('compress', join(dir, `${name}.onnx`), '--rank', '4', '--no-cache', '-o', join(dir, `${name}.lowrank.onnx`)), 0);
    assert.equal(await cli('compress', join(dir, `${name}.pt`), '--rank', '4', '--no-cache', '--save-plan', join(dir, `${name}.plan.json`), '-o', join(dir, `${name}.lowrank.safetensors`)), 0);
    const r = ref[name];
    const x = r.dtype === 'torch.int64'
      ? new ort.Tensor('int64', BigInt64Array.from(r.input.map(BigInt)), r.shape)
      : new ort.Tensor('float32', Float32Array.from(r.input), r.shape);
    onnxOut[name] = (await runModel(join(dir, `${name}.lowrank.onnx`), () => ({ x }))).y.data as Float32Array;
  }
  runPython(SCRIPT(), ['apply', dir, WORKER_PY, __dirname]);
  applied = JSON.parse(readFileSync(join(dir, 'apply.json'), 'utf8'));
});
after(() => dir && rmSync(dir, { recursive: true, force: true }));

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

for (const name of ['encoder', 'skeleton']) {
  test(`${name}: both paths factorize the same layers at the same ranks`, { skip }, async () => {
    const onnxPlan = (await openModel(join(dir, `${name}.lowrank.onnx`))).layers.filter((l) => l.compressed).map((l) => `${l.name}@${l.compressed!.rank}`).sort();
    const ptPlan = JSON.parse(readFileSync(join(dir, `${name}.plan.json`), 'utf8')).layers.filter((r: { skipped?: boolean }) => !r.skipped).map((r: { layer: string; k: number }) => `${r.layer}@${r.k}`).sort();
    assert.ok(ptPlan.length >= (name === 'encoder' ? 10 : 3), ptPlan.join(' ')); // skeleton: stem (16×3) cannot save at rank 4
    assert.deepEqual(ptPlan, onnxPlan);
  });

  test(`${name}: apply_factors in PyTorch reproduces the compressed ONNX model in ONNX Runtime (1e-5)`, { skip }, () => {
    const diff = maxDiff(applied[name].applied, onnxOut[name]);
    console.log(`# ${name}: max |apply_factors − ONNX Runtime| = ${diff.toExponential(2)}`);
    assert.ok(diff <= 1e-5, `max |Δ| ${diff}`);
    // …and compression changed the outputs (the test would notice factors that were not applied).
    assert.ok(maxDiff(ref[name].dense, onnxOut[name]) > 1e-3);
  });

  test(`${name}: factorize(model, plan) in memory agrees with the factors file`, { skip }, () => {
    const diff = maxDiff(applied[name].factorized, applied[name].applied);
    console.log(`# ${name}: max |factorize − apply_factors| = ${diff.toExponential(2)}`);
    assert.ok(diff <= 1e-5, `max |Δ| ${diff}`);
    assert.ok(maxDiff(applied[name].factorized, ref[name].dense) > 1e-3, 'factorize changed the model');
  });

  test(`${name}: the factors file holds every other tensor, the plan, and the parameter count it promised`, { skip }, async () => {
    const file = join(dir, `${name}.lowrank.safetensors`);
    const tensors = await readSafetensors(file);
    const source = await openModel(join(dir, `${name}.pt`));
    const plan = JSON.parse(readFileSync(join(dir, `${name}.plan.json`), 'utf8'));
    const factorized = new Set(plan.layers.filter((r: { skipped?: boolean }) => !r.skipped).map((r: { weight: string }) => r.weight));
    for (const key of (source as unknown as { tensorNames(): string[] }).tensorNames()) {
      if (factorized.has(key)) assert.ok(!tensors.has(key), `${key} is replaced by factors`);
      else assert.deepEqual(Buffer.from(tensors.get(key)!.bytes), Buffer.from(source.tensor(key)!.bytes()), `${key} copied unchanged`);
    }
    assert.ok(applied[name].stateKeysMatchFile, 'the rebuilt model\'s state_dict keys are the file\'s');
    assert.ok(statSync(file).size < statSync(join(dir, `${name}.pt`)).size);
    const kinds = new Set(Object.values(applied[name].kinds));
    if (name === 'encoder') assert.deepEqual([...kinds].sort(), ['LowRankEmbedding', 'LowRankLinear', 'LowRankMultiheadAttention']);
    else assert.deepEqual([...kinds].sort(), ['LowRankConv', 'LowRankLinear']);
    // num_batches_tracked (int64) is a buffer the plan counts as a parameter; floats match exactly.
    assert.equal(applied[name].params + (name === 'skeleton' ? 1 : 0), applied[name].planModelParamsAfter);
  });
}

test('compress never writes over its input and needs a .safetensors output for a state dict', { skip }, async () => {
  const errors: string[] = [];
  const err = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string) => { errors.push(String(s)); return true; }) as typeof process.stderr.write;
  try {
    assert.equal(await cli('compress', join(dir, 'encoder.pt'), '--rank', '4', '-o', join(dir, 'encoder.pt')), 2);
    assert.equal(await cli('compress', join(dir, 'encoder.pt'), '--rank', '4', '-o', join(dir, 'encoder.lowrank.pt')), 2);
    assert.equal(await cli('compress', join(dir, 'encoder.pt'), '--rank', '4', '--check', '3', '-o', join(dir, 'x.safetensors')), 2);
  } finally {
    process.stderr.write = err;
  }
  assert.match(errors.join(''), /is the input model; Rankscope never overwrites a model/);
  assert.match(errors.join(''), /must be a \.safetensors file/);
  assert.match(errors.join(''), /--check runs the model in ONNX Runtime/);
  assert.ok(!existsSync(join(dir, 'encoder.lowrank.pt')) && !existsSync(join(dir, 'x.safetensors')));
});

test('rankscope torch-path prints the folder holding rankscope_torch', { skip }, async () => {
  lines.length = 0;
  assert.equal(await cli('torch-path'), 0);
  const folder = lines.join('').trim();
  assert.ok(existsSync(join(folder, 'rankscope_torch', '__init__.py')), folder);
});
