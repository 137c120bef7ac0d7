// Labels checked against the model's output (issue 12 item 1) and outputs that are not
// (N, classes), fixed batch sizes and fidelity-only evaluation (item 9), through `rankscope eval`
// on real ONNX Runtime sessions, against numpy's float64 scores of the same models.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeLabelFixtures } from './fixtures';
import { evalCommand, type EvalReport } from '../../../src/cli/eval';
import type { CommandIO } from '../../../src/cli/command';
import { RankscopeError } from '../../../src/core/errors';

let dir = '';
let ref: Record<string, number>;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'rankscope-labels-'));
  writeLabelFixtures(dir);
  ref = JSON.parse(readFileSync(join(dir, 'labels_ref.json'), 'utf8'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function io(): CommandIO & { lines: string[] } {
  const lines: string[] = [];
  return { lines, out: (s) => lines.push(s), err: () => undefined, signal: new AbortController().signal };
}

async function evalJson(model: string, ...args: string[]): Promise<EvalReport> {
  const o = io();
  assert.equal(await evalCommand.run([join(dir, model), '--data', join(dir, 'labels.npz'), '--input', 'x=x', '--threads', '1', '--runs', '0', '--json', ...args], o), 0);
  return JSON.parse(o.lines.join('\n')) as EvalReport;
}

function rejects(model: string, args: string[], code: string, message: RegExp): Promise<void> {
  return assert.rejects(evalCommand.run([join(dir, model), '--data', join(dir, 'labels.npz'), '--input', 'x=x', '--threads', '1', '--runs', '0', ...args], io()),
    (e: unknown) => {
      assert.ok(e instanceof RankscopeError, String(e));
      assert.equal(e.code, code, e.message);
      assert.match(e.message, message);
      return true;
    });
}

test('good labels in every form score as numpy does: indices, float indices, an (N, 1) column', async () => {
  for (const labels of ['y', 'y_float', 'y_col']) {
    const r = await evalJson('cls32.onnx', '--labels', labels);
    assert.equal(r.metrics.top1, ref.cls32_top1, labels);
    assert.equal(r.metrics.classes, 32);
  }
});

test('labels that are not classes of the output are refused, naming the sample', async () => {
  await rejects('cls32.onnx', ['--labels', 'y_big'], 'SHAPE_MISMATCH', /labels\.npz:y_big: sample 7 has label 1000, but output 'y' has 32 classes \(0…31\)/);
  await rejects('cls32.onnx', ['--labels', 'y_neg'], 'SHAPE_MISMATCH', /y_neg: sample 3 has label -1, but output 'y' has 32 classes/);
  await rejects('cls32.onnx', ['--labels', 'y_nan'], 'SHAPE_MISMATCH', /y_nan: sample 5 has label NaN, which is not a class index/);
  await rejects('cls32.onnx', ['--labels', 'y_frac'], 'SHAPE_MISMATCH', /y_frac: sample 9 has label 2\.5, which is not a class index/);
  await rejects('cls32.onnx', ['--labels', 'y_narrow'], 'SHAPE_MISMATCH', /y_narrow has shape \(40, 10\); output 'y' has 32 classes, so labels must be class indices \(N,\) or one-hot \(N, 32\)/);
  await rejects('cls32.onnx', ['--labels', 'y_tie'], 'SHAPE_MISMATCH', /y_tie: sample 11 has no single class in its one-hot row/);
});

test('the CLI: a bad label is exit 2 with one line on stderr, nothing on stdout', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, '../../../src/cli/main.ts'), 'eval', join(dir, 'cls32.onnx'),
    '--data', join(dir, 'labels.npz'), '--input', 'x=x', '--labels', 'y_big', '--runs', '0'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /sample 7 has label 1000/);
});

test('an (N, T, C) output: per-position scores with --class-axis or (N, T) labels; (N,) labels and ambiguous axes refused', async () => {
  // (N, T) index labels settle the class axis (only axis 2 removed gives (N, 6)).
  const byShape = await evalJson('seq.onnx', '--labels', 'y_seq');
  assert.equal(byShape.metrics.top1, ref.seq_top1);
  assert.equal(byShape.metrics.classAxis, 2);
  assert.equal(byShape.metrics.positions, 6);
  assert.deepEqual(byShape.metrics.outputShape, [6, 5]);
  // One-hot (N, T, C) labels need the axis named; then they score the same.
  await rejects('seq.onnx', ['--labels', 'y_seq_onehot'], 'BAD_ARGUMENT', /output 'y' has shape \(N, 6, 5\): which axis holds the classes\? Give --class-axis \(1 or 2\)/);
  const named = await evalJson('seq.onnx', '--labels', 'y_seq_onehot', '--class-axis', '2');
  assert.equal(named.metrics.top1, ref.seq_top1);
  assert.equal((await evalJson('seq.onnx', '--labels', 'y_seq_onehot', '--class-axis=-1')).metrics.top1, ref.seq_top1);
  // Per-sample labels do not fit a per-position output (this scored 0 % silently before).
  await rejects('seq.onnx', ['--labels', 'y', '--class-axis', '2'], 'SHAPE_MISMATCH', /y has shape \(40,\); output 'y' has 5 classes on axis 2 of \(N, 6, 5\), so labels must be class indices \(N, 6\) or one-hot \(N, 6, 5\)/);
  await rejects('seq.onnx', ['--labels', 'y_seq_big'], 'SHAPE_MISMATCH', /y_seq_big: sample 2 at position 4 has label 5, but output 'y' has 5 classes \(0…4\)/);
  await rejects('seq.onnx', ['--labels', 'y_seq', '--class-axis', '3'], 'BAD_ARGUMENT', /class axis 3 is not an axis of output 'y' \(N, 6, 5\): give 1…2/);
  await rejects('seq.onnx', ['--labels', 'y_seq', '--class-axis', '0'], 'BAD_ARGUMENT', /0 is the batch/);
  // (N, 5, 5) with (N, 5) labels: either axis could be the classes.
  await rejects('square.onnx', ['--labels', 'y_square'], 'BAD_ARGUMENT', /which axis holds the classes\? Give --class-axis \(1 or 2\)/);
  assert.equal((await evalJson('square.onnx', '--labels', 'y_square', '--class-axis', '1')).metrics.classAxis, 1);
});

test('classes on a middle axis (N, C, H, W): labels (N, H, W) place it, scores equal numpy', async () => {
  const r = await evalJson('seg.onnx', '--labels', 'y_seg');
  assert.equal(r.metrics.classAxis, 1);
  assert.equal(r.metrics.classes, 4);
  assert.equal(r.metrics.positions, 6);
  assert.equal(r.metrics.top1, ref.seg_top1);
});

test('fidelity only (no labels), any output shape: agreement, relative error and KL per position equal numpy', async () => {
  const r = await evalJson('seq_perturbed.onnx', '--labels', 'none', '--compare', join(dir, 'seq.onnx'), '--class-axis', '2');
  assert.equal(r.metrics.top1, undefined);
  assert.equal(r.metrics.agreement, ref.seq_agreement);
  assert.ok(Math.abs(r.metrics.relativeError! - ref.seq_relativeError) <= 1e-5 * ref.seq_relativeError, `${r.metrics.relativeError} vs ${ref.seq_relativeError}`);
  assert.ok(Math.abs(r.metrics.meanKL! - ref.seq_meanKL) <= 1e-4 * ref.seq_meanKL);
  // Without a class axis: the relative error still, and the report says why agreement is missing.
  const plain = await evalJson('seq_perturbed.onnx', '--labels', 'none', '--compare', join(dir, 'seq.onnx'));
  assert.equal(plain.metrics.agreement, undefined);
  assert.equal(plain.metrics.classes, undefined);
  assert.ok(Math.abs(plain.metrics.relativeError! - ref.seq_relativeError) <= 1e-5 * ref.seq_relativeError);
  const text = io();
  await evalCommand.run([join(dir, 'seq_perturbed.onnx'), '--data', join(dir, 'labels.npz'), '--input', 'x=x', '--labels', 'none', '--compare', join(dir, 'seq.onnx'), '--runs', '0'], text);
  assert.match(text.lines.join('\n'), /top-1 agreement with original\s+— \(output \(N, 6, 5\) has no clear class axis; --class-axis K names it\)/);
  assert.match(text.lines.join('\n'), /relative output error\s+\d\.\d{3}e-\d+/);
});

test('a model with a fixed batch size is fed that size (the last batch padded); another --batch-size is refused', async () => {
  const fixed1 = await evalJson('fixed1.onnx', '--labels', 'y', '--runs', '2');
  assert.equal(fixed1.metrics.top1, ref.cls32_top1);
  assert.equal(fixed1.latency!.batchSize, 1);
  // 40 samples in batches of 4 would divide evenly; --limit 39 leaves a short last batch to pad.
  const fixed4 = await evalJson('fixed4.onnx', '--labels', 'y', '--limit', '39');
  const dynamic = await evalJson('cls32.onnx', '--labels', 'y', '--limit', '39');
  assert.equal(fixed4.samples, 39);
  assert.equal(fixed4.metrics.top1, dynamic.metrics.top1);
  const fidelity = await evalJson('fixed4.onnx', '--labels', 'none', '--compare', join(dir, 'cls32.onnx'), '--limit', '39');
  assert.equal(fidelity.metrics.agreement, 1);
  assert.ok(fidelity.metrics.relativeError! < 1e-6);
  await rejects('fixed1.onnx', ['--labels', 'y', '--batch-size', '8'], 'BAD_ARGUMENT', /batch size 8 was asked for, but the model's inputs take a fixed batch of 1/);
  await rejects('fixed1.onnx', ['--labels', 'y', '--compare', join(dir, 'fixed4.onnx')], 'UNSUPPORTED', /different fixed batch sizes/);
});
