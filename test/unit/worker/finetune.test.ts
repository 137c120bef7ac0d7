// End to end on a small model (CPU): the compressed MLP from test/python/fixtures.py loses
// accuracy at rank 2; fine-tuning in the real Python/PyTorch worker wins some back, and the
// written ONNX runs in ONNX Runtime and matches the worker's own forward. Also: cancel mid-epoch
// then resume (bit-identical to an uninterrupted run), kill -9, wrong data shape, missing torch,
// unsupported ops.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RankscopeError } from '../../../src/core/errors';
import { openOnnx } from '../../../src/core/formats/onnx';
import { OrtRunner } from '../../../src/core/eval/runner';
import { findResumable, finetune, readRunRecord, type FinetuneRequest } from '../../../src/worker/finetune';
import { checkFinetuneEnvironment } from '../../../src/worker/envCheck';
import type { WorkerMessage } from '../../../src/worker/protocol';
import { readSafetensors } from '../../../src/worker/safetensors';
import { pythonHas, runPython, testPython } from '../../helpers/python';

const hasTorch = pythonHas('torch', 'numpy', 'onnx');
/** Float32 values from hex text (a copy: small Buffers are views into a shared pool). */
function f32FromHex(hex: string): Float32Array {
  const b = Buffer.from(hex, 'hex');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

const dir = mkdtempSync(join(tmpdir(), 'rankscope-finetune-'));
const fixture = { compressed: join(dir, 'compressed.onnx'), original: join(dir, 'original.onnx'), data: join(dir, 'data.npz') };
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

function request(extra: Partial<FinetuneRequest> = {}): FinetuneRequest {
  return { model: fixture.compressed, data: { path: fixture.data }, ...extra, training: { epochs: 3, lr: 3e-3, seed: 1, ...extra.training }, worker: { python: testPython(), ...extra.worker } };
}

before(() => {
  if (!hasTorch) return;
  runPython(`import sys; sys.path.insert(0, 'test/python'); import fixtures; fixtures.build(sys.argv[1], 2)`, [dir]);
});

test('fine-tuning raises validation accuracy; the written ONNX runs in ORT, matches the worker within 1e-4 and scores the reported test accuracy', { skip: !hasTorch && 'needs torch + onnx in the test Python' }, async () => {
  const before = sha(fixture.compressed);
  const out = join(dir, 'e2e.finetuned.onnx');
  const events: WorkerMessage[] = [];
  const r = await finetune(request({ out }), { onMessage: (m) => events.push(m) });
  assert.equal(r.status, 'completed');
  const s = r.summary;
  assert.ok(s.valAccuracyBefore! < 0.5, `the compressed model should have lost accuracy (got ${s.valAccuracyBefore})`);
  assert.ok(s.valAccuracyBest! > s.valAccuracyBefore! + 0.1, `validation accuracy ${s.valAccuracyBefore} → ${s.valAccuracyBest}`);
  assert.equal(s.epochs.length, 3);
  assert.deepEqual(events.map((e) => e.type).filter((t, i, a) => a.indexOf(t) === i), ['hello', 'started', 'eval', 'progress', 'checkpoint', 'done']);
  // Validation: 10 % of x_train held out (stratified, seeded); test: all of x_test, scored once.
  const started = events.find((e) => e.type === 'started');
  assert.ok(started?.type === 'started');
  assert.equal(started.trainSamples + started.valSamples, 2048);
  assert.ok(Math.abs(started.valSamples - 205) <= 8, `${started.valSamples} validation samples`);
  assert.equal(started.testSamples, 512);
  assert.deepEqual(s.splits, started.splits);
  assert.equal(events.filter((e) => e.type === 'eval' && e.phase === 'test').length, 1);
  // The run record says it completed: nothing to resume.
  assert.equal(readRunRecord(r.workDir)?.status, 'completed');
  assert.equal(sha(fixture.compressed), before, 'the input model must not change');

  // The worker's forward on the probe samples vs ONNX Runtime on the written file.
  assert.ok(r.verification && r.verification.samples === 16);
  assert.ok(r.verification.maxAbsDiff <= 1e-4, `max |ORT − worker| = ${r.verification.maxAbsDiff}`);

  // ORT accuracy of the written model on the test split (x_test) equals the worker's test figure.
  const npz = runPython(`import numpy as np, sys; z = np.load(sys.argv[1]); sys.stdout.write(z['x_test'].tobytes().hex() + ' ' + ','.join(map(str, z['y_test'].argmax(1))))`, [fixture.data]);
  const [hex, labels] = npz.split(' ');
  const x = f32FromHex(hex);
  const y = labels.split(',').map(Number);
  const runner = OrtRunner.create({ intraOpThreads: 1 });
  try {
    const session = await runner.open(out);
    const logits = (await session.run({ input: { type: 'float32', dims: [y.length, x.length / y.length], data: x } })).logits.data as Float32Array;
    const classes = logits.length / y.length;
    let correct = 0;
    for (let i = 0; i < y.length; i++) {
      const row = logits.subarray(i * classes, (i + 1) * classes);
      if (row.indexOf(Math.max(...row)) === y[i]) correct++;
    }
    assert.ok(Math.abs(correct / y.length - s.testAccuracy!) < 1e-9, `ORT test accuracy ${correct / y.length} vs worker ${s.testAccuracy}`);
  } finally {
    await runner.dispose();
  }

  // Only initializer values changed: same nodes, metadata, opsets, initializer names/types/dims.
  const a = (await openOnnx(fixture.compressed)).proto;
  const b = (await openOnnx(out)).proto;
  assert.deepEqual(b.graph!.node, a.graph!.node);
  assert.deepEqual(b.metadataProps, a.metadataProps);
  assert.deepEqual(b.opsetImport, a.opsetImport);
  assert.deepEqual(b.graph!.input, a.graph!.input);
  assert.deepEqual(b.graph!.output, a.graph!.output);
  assert.deepEqual(b.graph!.initializer.map((t) => [t.name, t.dataType, t.dims]), a.graph!.initializer.map((t) => [t.name, t.dataType, t.dims]));
  const changed = b.graph!.initializer.filter((t, i) => Buffer.compare(Buffer.from(t.rawData), Buffer.from(a.graph!.initializer[i].rawData)) !== 0);
  assert.ok(changed.length > 0, 'some values must have changed');
});

test('distillation from the teacher with only low-rank factors and biases training', { skip: !hasTorch && 'needs torch' }, async () => {
  const out = join(dir, 'kd.onnx');
  const r = await finetune(request({ out, teacher: fixture.original, training: { kd: { temperature: 4, alpha: 0.7 }, trainable: 'lowrank', epochs: 2 } }));
  assert.equal(r.status, 'completed');
  assert.equal(r.summary.teacher, true);
  assert.ok(r.summary.params.trainable < r.summary.params.total);
  assert.ok(r.summary.valAccuracyBest! > r.summary.valAccuracyBefore!);
  // The dense last layer (fc2.weight) is frozen under 'lowrank': written back unchanged.
  const a = (await openOnnx(fixture.compressed)).tensor('fc2.weight')!.bytes();
  const b = (await openOnnx(out)).tensor('fc2.weight')!.bytes();
  assert.deepEqual(Buffer.from(b), Buffer.from(a));
  assert.notDeepEqual(Buffer.from((await openOnnx(out)).tensor('fc0.lowrank_A')!.bytes()), Buffer.from((await openOnnx(fixture.compressed)).tensor('fc0.lowrank_A')!.bytes()));
});

test('cancel mid-epoch checkpoints cleanly; resume finishes bit-identical to an uninterrupted run', { skip: !hasTorch && 'needs torch' }, async () => {
  const common = { training: { epochs: 2, batchSize: 4, progressEvery: 0 } };
  const workDir = join(dir, 'cancel-work');
  const out = join(dir, 'cancel.onnx');
  const controller = new AbortController();
  let cancelledAt: WorkerMessage | undefined;
  const first = await finetune(request({ ...common, out, workDir }), {
    signal: controller.signal,
    onMessage: (m) => {
      if (m.type === 'progress' && m.step >= 10 && !controller.signal.aborted) controller.abort();
      if (m.type === 'checkpoint' && m.reason === 'cancel') cancelledAt = m;
    },
  });
  assert.equal(first.status, 'cancelled');
  assert.ok(cancelledAt && cancelledAt.type === 'checkpoint');
  assert.equal(cancelledAt.epochsDone, 0, 'cancelled in the first epoch');
  // The run record: cancelled, where; findResumable lists it for this model and no other.
  const record = readRunRecord(workDir);
  assert.deepEqual([record?.status, record?.epochsDone, record?.step], ['cancelled', 0, cancelledAt.step]);
  assert.deepEqual(findResumable(dir, fixture.compressed).map((f) => f.workDir), [workDir]);
  assert.deepEqual(findResumable(dir, fixture.original), []);
  assert.ok(cancelledAt.step > 0 && cancelledAt.step < 512, `mid-epoch (step ${cancelledAt.step})`);
  assert.equal(existsSync(out), false, 'no model written on cancel');

  let resumedFrom: unknown;
  const second = await finetune(request({ ...common, out, workDir, resume: true }), {
    onMessage: (m) => { if (m.type === 'started') resumedFrom = m.resumedFrom; },
  });
  assert.deepEqual(resumedFrom, { epochsDone: 0, step: cancelledAt.step });
  assert.equal(second.status, 'completed');
  assert.deepEqual(findResumable(dir, fixture.compressed), [], 'a completed run is not offered for resuming');

  const straight = await finetune(request({ ...common, out: join(dir, 'straight.onnx'), workDir: join(dir, 'straight-work') }));
  const w1 = await readSafetensors(join(workDir, 'best.safetensors'));
  const w2 = await readSafetensors(join(dir, 'straight-work', 'best.safetensors'));
  for (const [name, t] of w2) assert.deepEqual(Buffer.from(w1.get(name)!.bytes), Buffer.from(t.bytes), `tensor ${name} differs after resume`);
  assert.deepEqual(second.summary.epochs.map((e) => e.valAccuracy), straight.summary.epochs.map((e) => e.valAccuracy));
});

test('kill -9 of the worker becomes a WORKER error with its last output, and no model is written', { skip: !hasTorch && 'needs torch' }, async () => {
  const out = join(dir, 'killed.onnx');
  let pid: number | undefined;
  await assert.rejects(
    finetune(request({ out, training: { epochs: 2, batchSize: 2, progressEvery: 0 } }), {
      onWorker: (w) => { pid = w.pid; },
      onMessage: (m) => { if (m.type === 'progress' && pid) { process.kill(pid, 'SIGKILL'); pid = undefined; } },
    }),
    (e: unknown) => e instanceof RankscopeError && e.code === 'WORKER' && /SIGKILL/.test(e.message) && /--resume/.test(e.hint ?? ''),
  );
  assert.equal(existsSync(out), false);
});

test('data whose shape does not fit the model: SHAPE_MISMATCH naming the array and the expected shape', { skip: !hasTorch && 'needs torch' }, async () => {
  const bad = join(dir, 'bad.npz');
  runPython(`import numpy as np, sys
np.savez(sys.argv[1], x_train=np.zeros((8, 23), np.float32), y_train=np.zeros(8, np.int64), x_test=np.zeros((4, 23), np.float32), y_test=np.zeros(4, np.int64))`, [bad]);
  await assert.rejects(finetune(request({ data: { path: bad }, out: join(dir, 'bad.onnx') })),
    (e: unknown) => e instanceof RankscopeError && e.code === 'SHAPE_MISMATCH' && /x_train/.test(e.message) && /\(8, 23\)/.test(e.message) && /24/.test(e.message));
});

test('a fresh run in a work folder drops an earlier run\'s checkpoint: a failure then offers nothing to resume', { skip: !hasTorch && 'needs torch' }, async () => {
  const workDir = join(dir, 'reused-work');
  mkdirSync(workDir, { recursive: true });
  writeFileSync(join(workDir, 'checkpoint.pt'), 'an earlier run\'s checkpoint');
  const bad = join(dir, 'bad.npz'); // from the SHAPE_MISMATCH test above
  await assert.rejects(finetune(request({ data: { path: bad }, out: join(dir, 'reused.onnx'), workDir })), (e: unknown) => e instanceof RankscopeError && e.code === 'SHAPE_MISMATCH');
  assert.equal(existsSync(join(workDir, 'checkpoint.pt')), false);
  assert.equal(readRunRecord(workDir)?.status, 'failed');
  assert.match(readRunRecord(workDir)?.error ?? '', /x_train/);
  assert.ok(!findResumable(dir).some((r) => r.workDir === workDir));
});

test('a loss that becomes NaN stops training with a NUMERIC error and writes no model', { skip: !hasTorch && 'needs torch' }, async () => {
  const nan = join(dir, 'nan.npz');
  runPython(`import numpy as np, sys
z = dict(np.load(sys.argv[1])); z['x_train'] = z['x_train'].copy(); z['x_train'][::7] = np.nan
np.savez(sys.argv[2], **z)`, [fixture.data, nan]);
  const out = join(dir, 'nan.onnx');
  // Validated on the clean x_test (named explicitly), so only training meets the NaN inputs.
  await assert.rejects(finetune(request({ data: { path: nan, valX: 'x_test', valY: 'y_test' }, out, training: { progressEvery: 0 } })),
    (e: unknown) => e instanceof RankscopeError && e.code === 'NUMERIC' && /loss became nan/.test(e.message));
  assert.equal(existsSync(out), false);
});

test('a Python without torch: a WORKER error that says what to install, before any training', { skip: !hasTorch && 'needs torch' }, async () => {
  // A `torch` package that fails to import shadows the real one (PYTHONPATH comes first).
  const fake = join(dir, 'fake-no-torch');
  mkdirSync(join(fake, 'torch'), { recursive: true });
  writeFileSync(join(fake, 'torch', '__init__.py'), 'raise ImportError("No module named \'torch\'", name="torch")\n');
  await assert.rejects(finetune(request({ worker: { env: { PYTHONPATH: fake } }, out: join(dir, 'nt.onnx') })),
    (e: unknown) => e instanceof RankscopeError && e.code === 'WORKER' && /cannot import torch/.test(e.message) && /pip install torch/.test(e.hint ?? ''));
  const report = await checkFinetuneEnvironment(testPython(), { env: { PYTHONPATH: fake } });
  assert.equal(report.ok, false);
  assert.match(report.problems[0].what, /no PyTorch/);
  const good = await checkFinetuneEnvironment(testPython());
  assert.equal(good.ok, true);
  assert.match(good.hello!.torch, /^\d+\.\d+/);
});

test('an interpreter that does not exist: a WORKER error naming it', async () => {
  await assert.rejects(finetune(request({ worker: { python: join(dir, 'no-such-python') }, out: join(dir, 'np.onnx') })),
    (e: unknown) => e instanceof RankscopeError && e.code === 'WORKER' && /no-such-python/.test(e.message));
});

test('unsupported ops are all reported before training starts', { skip: !hasTorch && 'needs torch' }, async () => {
  const model = join(dir, 'unsupported.onnx');
  runPython(`import onnx, sys
from onnx import helper, TensorProto
n = [helper.make_node('Hardmax', ['input'], ['h']), helper.make_node('Det', ['h'], ['d']), helper.make_node('Relu', ['h'], ['logits'])]
g = helper.make_graph(n, 'g', [helper.make_tensor_value_info('input', TensorProto.FLOAT, ['batch', 24])], [helper.make_tensor_value_info('logits', TensorProto.FLOAT, ['batch', 24])])
m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 17)]); m.ir_version = 8
onnx.save(m, sys.argv[1])`, [model]);
  const events: WorkerMessage[] = [];
  await assert.rejects(finetune(request({ model, out: join(dir, 'u.onnx') }), { onMessage: (m) => events.push(m) }),
    (e: unknown) => e instanceof RankscopeError && e.code === 'UNSUPPORTED' && /Det, Hardmax/.test(e.message));
  assert.ok(!events.some((m) => m.type === 'progress' || m.type === 'started'));
});
