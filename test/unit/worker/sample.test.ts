// LORTSAR end to end on the bundled sample (media/samples: the CATFormer variant, NTU-layout
// data): COMPRESS's real output at rank 8 loses most of its accuracy; two epochs in the worker
// (NTU preset, distillation from the original) win it back, validating on training subjects held
// out of x_train, and EVAL's ONNX Runtime evaluation of the written file on x_test agrees with the
// worker's test accuracy (scored once with the best weights).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compressToFile, planModel } from '../../../src/core/compress/apply';
import { loadDataset } from '../../../src/core/eval/dataset';
import { evaluate } from '../../../src/core/eval/evaluate';
import { OrtRunner } from '../../../src/core/eval/runner';
import { openOnnx } from '../../../src/core/formats/onnx';
import { finetune } from '../../../src/worker/finetune';
import { pythonHas, testPython } from '../../helpers/python';

const MODEL = 'media/samples/skeleton-catformer.onnx';
const DATA = 'media/samples/skeleton-actions.npz';
const ready = existsSync(MODEL) && existsSync(DATA) && pythonHas('torch', 'numpy');

test('sample model: compress at rank 8, fine-tune 2 epochs, ORT test accuracy = worker test accuracy, far above the compressed model', { skip: !ready && 'needs the bundled sample and torch' }, async () => {
  const original = (JSON.parse(readFileSync(MODEL.replace(/\.onnx$/, '.training.json'), 'utf8')) as { test_top1: number }).test_top1;
  const dir = mkdtempSync(join(tmpdir(), 'rankscope-sample-'));
  const compressed = join(dir, 'catformer.r8.onnx');
  const model = await openOnnx(MODEL);
  await compressToFile(model, await planModel(model, { rank: 8 }), compressed);

  const r = await finetune({
    model: compressed, teacher: MODEL, data: { path: DATA, preset: 'ntu' }, worker: { python: testPython() },
    training: { kd: { temperature: 4, alpha: 0.5 }, epochs: 2, lr: 2e-3, batchSize: 32, seed: 0 },
  });
  assert.equal(r.status, 'completed');
  const { valAccuracyBefore, valAccuracyBest, testAccuracy, splits } = r.summary;
  console.log(`sample: validation (held-out subjects) ${(100 * valAccuracyBefore!).toFixed(1)} % → ${(100 * valAccuracyBest!).toFixed(1)} %, test ${(100 * testAccuracy!).toFixed(1)} % (original ${(100 * original).toFixed(1)} %), ${r.summary.wallSeconds.toFixed(1)} s, ORT vs worker max |Δ| ${r.verification?.maxAbsDiff.toExponential(2)}`);
  assert.ok(splits.validation.source === 'held-out' && splits.validation.by === 'subject', JSON.stringify(splits.validation));
  assert.ok(valAccuracyBefore! < 0.5);
  assert.ok(valAccuracyBest! > valAccuracyBefore! + 0.3);
  assert.ok(testAccuracy! > valAccuracyBefore! + 0.3);
  assert.ok(r.verification!.maxAbsDiff <= 1e-4);

  const runner = OrtRunner.create({ intraOpThreads: 1 });
  try {
    const session = await runner.open(r.output!);
    const dataset = await loadDataset({ data: DATA, preset: 'ntu' }, session.inputs);
    const top1 = (await evaluate(session, dataset)).metrics.top1!;
    await dataset.close();
    assert.ok(Math.abs(top1 - testAccuracy!) < 1e-9, `${r.output}: ORT top-1 on x_test ${top1} vs worker test ${testAccuracy}`);
  } finally {
    await runner.dispose();
  }
});
