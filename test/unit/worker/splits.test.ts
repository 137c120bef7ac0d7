// Issue 13 items 7 and 8 on the command line: the CLI says which split each figure comes from
// (validation held out of the training data, test scored once with the best weights, or why there
// is no test figure) and numbers epochs as the worker does (1-based, never "3 / 2").
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatEpochProgress } from '../../../src/core/format';
import type { FinetuneSummary } from '../../../src/worker/protocol';
import { describeSplits, describeTest, describeValidation } from '../../../src/worker/splits';
import { pythonHas, runPython, testPython } from '../../helpers/python';

const hasTorch = pythonHas('torch', 'numpy', 'onnx');
const dir = mkdtempSync(join(tmpdir(), 'rankscope-splits-'));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, '../../../src/cli/main.ts'), 'finetune', ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('split descriptions name the split, how it was made, and why a figure is missing', () => {
  const base = { path: '/d/skeleton.npz', arrays: ['x_train', 'y_train'] as [string, string], samples: 90, fraction: 0.1, seed: 0 };
  assert.equal(describeValidation({ ...base, source: 'held-out', by: 'subject', subjectArray: 's_train', subjects: [3, 17], subjectsTotal: 19 }),
    'validation: 90 samples held out of x_train by subject (subjects 3, 17 of 19; 10 % asked, seed 0)');
  assert.equal(describeValidation({ ...base, source: 'held-out', by: 'stratified', note: 'no s_train' }),
    'validation: 90 samples held out of x_train at random, stratified by class (10 %, seed 0). Note: no s_train');
  assert.equal(describeValidation({ source: 'file', path: '/d/val.npz', arrays: ['x_val', 'y_val'], samples: 40 }),
    'validation: x_val/y_val of val.npz (40 samples), given for validation');
  assert.equal(describeTest({ path: '/d/skeleton.npz', arrays: ['x_test', 'y_test'], samples: 405 }),
    'test: x_test/y_test of skeleton.npz (405 samples), scored once with the best weights');
  assert.equal(describeTest({ missing: '/d/a.npz has no x_test/y_test' }), 'test: none (/d/a.npz has no x_test/y_test)');
});

test('progress reads as the worker counts: epoch as given, steps done', () => {
  assert.equal(formatEpochProgress(3, 3, 96, 96), 'epoch 3 / 3 · step 96 / 96');
  assert.equal(formatEpochProgress(1, 2), 'epoch 1 / 2');
});

let fx: { model: string; data: string } | undefined;
before(() => {
  if (!hasTorch) return;
  runPython(`import sys; sys.path.insert(0, 'test/python'); import fixtures; fixtures.build(sys.argv[1], 2)`, [dir]);
  fx = { model: join(dir, 'compressed.onnx'), data: join(dir, 'data.npz') };
});

test('rankscope finetune: every figure says its split; epochs run 1 … N; test once with the best weights', { skip: !hasTorch && 'needs torch + onnx' }, () => {
  const r = cli(fx!.model, '--data', fx!.data, '--epochs', '2', '--lr', '3e-3', '--python', testPython(), '-o', join(dir, 'a.onnx'));
  assert.equal(r.code, 0, r.err);
  const lines = r.out.split('\n');
  assert.ok(lines.some((l) => /^ {2}validation: \d+ samples held out of x_train at random, stratified by class \(10 %, seed 0\)$/.test(l)), r.out);
  assert.ok(lines.includes('  test: x_test/y_test of data.npz (512 samples), scored once with the best weights'), r.out);
  assert.ok(lines.some((l) => l.startsWith('before fine-tuning: validation accuracy ')), r.out);
  const epochNumbers = [...r.out.matchAll(/epoch (\d+) \/ (\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  assert.ok(epochNumbers.length >= 2);
  for (const [n, of] of epochNumbers) assert.ok(n >= 1 && n <= of && of === 2, `epoch ${n} / ${of} in\n${r.out}`);
  const steps = [...r.out.matchAll(/step (\d+) \/ (\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  for (const [n, of] of steps) assert.ok(n >= 1 && n <= of, `step ${n} / ${of}`);
  assert.deepEqual(steps.at(-1)![0], steps.at(-1)![1], 'the last progress line is the last step');
  assert.match(r.out, /^epoch 2 \/ 2: train loss [\d.]+, validation accuracy [\d.]+% \(loss [\d.]+\)/m);
  assert.equal([...r.out.matchAll(/^test, with the best weights \((?:epoch [12]|before fine-tuning)\): accuracy [\d.]+% \(loss [\d.]+, 512 samples\)$/gm)].length, 1, r.out);
  assert.match(r.out, /^validation accuracy [\d.]+% → [\d.]+% \((?:best: epoch [12]|before fine-tuning: no epoch beat it)\); test accuracy [\d.]+% \(512 samples, the best weights, scored once\);/m);
});

test('rankscope finetune --val-data DATA --json: validation is the given file, and its test arrays give no test figure', { skip: !hasTorch && 'needs torch + onnx' }, () => {
  const r = cli(fx!.model, '--data', fx!.data, '--val-data', fx!.data, '--epochs', '1', '--python', testPython(), '-o', join(dir, 'b.onnx'), '--json');
  assert.equal(r.code, 0, r.err);
  const result = JSON.parse(r.out.trim().split('\n').at(-1)!) as { type: string; summary: FinetuneSummary };
  assert.equal(result.type, 'result');
  const s = result.summary;
  assert.equal(s.splits.validation.source, 'file');
  assert.equal(s.splits.validation.samples, 512);
  assert.equal(s.splits.train.samples, 2048, 'nothing held out of training when validation is given');
  assert.equal(s.testAccuracy, null);
  assert.deepEqual(describeSplits(s.splits), [
    'validation: x_test/y_test of data.npz (512 samples), given for validation',
    'test: none (the validation arrays are the test arrays (x_test, y_test): the best epoch was picked on them, so they give no independent test figure)',
  ]);
  assert.ok(typeof s.valAccuracyBest === 'number' && typeof s.valAccuracyBefore === 'number');
});
