// Fine-tuning options: one set of defaults (the Python worker's copy equals the TypeScript one),
// every numeric option range-checked in one place before anything starts (CLI and extension
// share it), and a diverged run is a clear error that writes nothing (issue 12, item 8).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RankscopeError } from '../../../src/core/errors';
import { finetune } from '../../../src/worker/finetune';
import { checkTraining, KD_DEFAULTS, NUMBER_RULES, numberProblem, resolveTraining, TRAINING_DEFAULTS, type TrainingRequest } from '../../../src/worker/trainingOptions';
import { pythonHas, runPython, testPython } from '../../helpers/python';

const dir = mkdtempSync(join(tmpdir(), 'rankscope-training-options-'));
const hasTorch = pythonHas('torch', 'numpy', 'onnx');

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, '../../../src/cli/main.ts'), 'finetune', ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('the Python worker\'s defaults equal TRAINING_DEFAULTS and KD_DEFAULTS', () => {
  const python = JSON.parse(runPython(`import json, sys; sys.path.insert(0, 'src/worker/python')
from rankscope_worker.config import DEFAULTS, KD_DEFAULTS
print(json.dumps({"defaults": DEFAULTS, "kd": KD_DEFAULTS}))`));
  assert.deepEqual(python.defaults, { ...TRAINING_DEFAULTS });
  assert.deepEqual(python.kd, { ...KD_DEFAULTS });
  // And the worker fills a partial config the same way resolveTraining does.
  const filled = JSON.parse(runPython(`import json, sys; sys.path.insert(0, 'src/worker/python')
from rankscope_worker.config import with_defaults
print(json.dumps(with_defaults({"epochs": 7, "lr": None, "kd": {"alpha": 0.2}})))`));
  assert.deepEqual(filled, resolveTraining({ epochs: 7, kd: { alpha: 0.2 } }, true));
});

test('resolveTraining: unset options take the defaults; a teacher brings distillation defaults; kd null trains on labels', () => {
  assert.deepEqual(resolveTraining(), TRAINING_DEFAULTS);
  assert.deepEqual(resolveTraining({ epochs: undefined, lr: 5e-4 }), { ...TRAINING_DEFAULTS, lr: 5e-4 });
  assert.deepEqual(resolveTraining({}, true).kd, KD_DEFAULTS);
  assert.deepEqual(resolveTraining({ kd: { alpha: 0.7, temperature: undefined } }, true).kd, { temperature: KD_DEFAULTS.temperature, alpha: 0.7 });
  assert.equal(resolveTraining({ kd: null }, true).kd, null);
  checkTraining(resolveTraining({}, true)); // the defaults pass their own check
});

test('every numeric option is range-checked; the message names the flag, the range and the value', () => {
  const bad: [TrainingRequest, RegExp][] = [
    [{ epochs: 0 }, /--epochs \(epochs\) must be an integer ≥ 1.*got 0/], [{ epochs: 1.5 }, /--epochs/], [{ batchSize: 0 }, /--batch-size/],
    [{ lr: 0 }, /--lr .*\(0, 1\]/], [{ lr: 2 }, /--lr/], [{ lr: Number.NaN }, /--lr .*got NaN/],
    [{ optimizer: 'sgd', momentum: 5 }, /--momentum \(momentum\) must be a number in \(0, 1\).*got 5/], [{ momentum: 1 }, /--momentum/], [{ momentum: 0 }, /--momentum/], [{ momentum: -0.1 }, /--momentum/],
    [{ weightDecay: -1 }, /--weight-decay/], [{ warmupEpochs: -1 }, /--warmup/], [{ stepEpochs: 0 }, /--step-epochs/],
    [{ gamma: 0 }, /--gamma/], [{ gamma: 2 }, /--gamma/], [{ gradClip: -1 }, /--grad-clip/], [{ gradClip: Infinity }, /--grad-clip/],
    [{ seed: -1 }, /--seed/], [{ seed: 0.5 }, /--seed/], [{ probeSamples: -1 }, /probeSamples/], [{ evalBatchSize: 0 }, /evalBatchSize/],
    [{ progressEvery: -1 }, /progressEvery/], [{ kd: { temperature: 0 } }, /--kd-temperature/],
    [{ valFraction: 0 }, /--val-fraction \(valFraction\) must be a number in \(0, 0\.5\].*got 0/], [{ valFraction: 0.6 }, /--val-fraction/],
    [{ kd: { alpha: 2 } }, /--kd-alpha \(kd\.alpha\) must be a number in \[0, 1\].*got 2/], [{ kd: { alpha: -0.5 } }, /--kd-alpha/],
    [{ optimizer: 'adam' as never }, /--optimizer must be one of adamw, sgd; got 'adam'/], [{ schedule: 'linear' as never }, /--schedule/],
    [{ trainable: 'some' as never }, /--trainable/], [{ amp: 'fp8' as never }, /--amp/], [{ device: 'gpu' }, /--device/],
    [{ warmupEpochs: 4, epochs: 3 }, /--warmup \(4 epochs\) is longer than the training/],
  ];
  for (const [request, message] of bad) {
    assert.throws(() => checkTraining(resolveTraining(request, true)), (e: RankscopeError) => e.code === 'BAD_ARGUMENT' && message.test(e.message), `${JSON.stringify(request)} should be refused with ${message}`);
  }
  assert.throws(() => checkTraining(TRAINING_DEFAULTS, { path: 'd.npz', preset: 'ntu', ntu: { frames: 0 } }), /--frames/);
  assert.throws(() => checkTraining(TRAINING_DEFAULTS, { path: 'd.npz', preset: 'ntu', ntu: { crop: 1.5 } }), /ntu\.crop/);
  // The edges that are allowed.
  for (const request of [{ momentum: 0.99 }, { kd: { alpha: 0 } }, { kd: { alpha: 1 } }, { gradClip: 0 }, { lr: 1 }, { gamma: 1 }, { warmupEpochs: 3, epochs: 3 }, { seed: 2 ** 40 }, { device: 'cuda:1' }, { valFraction: 0.5 }] as TrainingRequest[]) {
    checkTraining(resolveTraining(request, true));
  }
  // Each rule is exercised above.
  for (const option of Object.keys(NUMBER_RULES) as (keyof typeof NUMBER_RULES)[]) assert.ok(numberProblem(option, Number.NaN), option);
  assert.equal(numberProblem('lr', 1e-4), undefined);
});

test('finetune() refuses a bad option before it reads, exports or starts anything', async () => {
  const out = join(dir, 'never.onnx');
  await assert.rejects(finetune({
    model: join(dir, 'missing.onnx'), data: { path: join(dir, 'missing.npz') }, teacher: join(dir, 'missing-teacher.onnx'), out,
    training: { kd: { alpha: 2 } }, worker: { python: join(dir, 'no-such-python') },
  }), (e: unknown) => e instanceof RankscopeError && e.code === 'BAD_ARGUMENT' && /--kd-alpha/.test(e.message));
  assert.equal(existsSync(out), false);
  assert.equal(existsSync(join(dir, '.never.onnx.finetune')), false, 'no work folder');
});

test('rankscope finetune: --kd-alpha 2 and --momentum 5 exit 2 with one line naming the option', () => {
  for (const [args, flag] of [[['--teacher', 'orig.onnx', '--kd-alpha', '2'], '--kd-alpha'], [['--optimizer', 'sgd', '--momentum', '5'], '--momentum'], [['--lr', '10'], '--lr']] as const) {
    const r = cli(join(dir, 'model.onnx'), '--data', join(dir, 'data.npz'), '-o', join(dir, 'out.onnx'), '--python', testPython(), ...args.map((a) => (a.endsWith('.onnx') ? join(dir, a) : a)));
    assert.equal(r.code, 2, r.err);
    const lines = r.err.trim().split('\n');
    assert.equal(lines.length, 1, r.err);
    assert.ok(lines[0].startsWith(`rankscope finetune: ${flag} (`), r.err);
    assert.equal(existsSync(join(dir, 'out.onnx')), false);
  }
});

let fixture: { compressed: string; blowup: string } | undefined;
before(() => {
  if (!hasTorch) return;
  runPython(`import sys; sys.path.insert(0, 'test/python'); import fixtures; fixtures.build(sys.argv[1], 2)`, [dir]);
  // Training inputs 1e30 times too large: the first step's loss is finite, the step it takes
  // (SGD, no clipping) sends the weights to Inf, and the validation loss after the epoch is NaN.
  runPython(`import numpy as np, sys
z = dict(np.load(sys.argv[1])); z['x_train'] = z['x_train'] * np.float32(1e30)
np.savez(sys.argv[2], **z)`, [join(dir, 'data.npz'), join(dir, 'blowup.npz')]);
  fixture = { compressed: join(dir, 'compressed.onnx'), blowup: join(dir, 'blowup.npz') };
});

test('a run whose validation loss becomes NaN: exit 2, what diverged and what to try, no model written', { skip: !hasTorch && 'needs torch + onnx in the test Python' }, () => {
  const out = join(dir, 'diverged.onnx');
  const r = cli(fixture!.compressed, '--data', fixture!.blowup, '-o', out, '--python', testPython(),
    '--optimizer', 'sgd', '--lr', '0.5', '--grad-clip', '0', '--batch-size', '2048', '--epochs', '2');
  assert.equal(r.code, 2, `exit ${r.code}\n${r.out}\n${r.err}`);
  const last = r.err.trim().split('\n').at(-1)!;
  assert.match(last, /^rankscope finetune: .*diverged: the validation loss became nan after epoch 1/);
  assert.match(last, /no model was written\. Try a lower learning rate \(--lr 0\.05; now 0\.5\), gradient clipping \(--grad-clip 1\)/);
  assert.doesNotMatch(r.err, /TypeError|\n\s+at /);
  assert.equal(existsSync(out), false);
  // Nothing of the diverged epoch was kept: no checkpoint of it.
  assert.equal(existsSync(join(dir, '.diverged.onnx.finetune', 'checkpoint.pt')), false);
});
