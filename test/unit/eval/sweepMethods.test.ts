// `sweep --methods svd,whitened`: every level measured with both factorizations (a method per
// point, one factor bank per method), the 'whitened' allocation, and whitened factors truncated
// from the bank equal to a direct whitened factorization at that rank.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTwoBranchFixture, spectraOnThread } from './fixtures';
import { openOnnx, type OnnxModel } from '../../../src/core/formats/onnx';
import { OrtRunner } from '../../../src/core/eval/runner';
import { loadDataset, type Dataset } from '../../../src/core/eval/dataset';
import { calibrate } from '../../../src/core/eval/calibration';
import { runSweep } from '../../../src/core/eval/sweep';
import { sweepCommand } from '../../../src/cli/sweep';
import { RankscopeError } from '../../../src/core/errors';
import { multiply } from '../../../src/core/compress/factor';
import { layerMatrices } from '../../../src/core/model/matrix';
import { truncateWhitened, whitenedGroups } from '../../../src/core/compress/whitened';
import type { WhiteningSource } from '../../../src/core/compress/apply';

let dir = '';
let model: OnnxModel;
let runner: OrtRunner;
let data: Dataset;
let whitening: WhiteningSource;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rankscope-sweep-methods-'));
  writeTwoBranchFixture(dir);
  model = await openOnnx(join(dir, 'two_branch.onnx'));
  runner = OrtRunner.create({ intraOpThreads: 1 });
  const probe = await runner.open(join(dir, 'two_branch.onnx'));
  data = await loadDataset({ data: join(dir, 'two_branch.npz') }, probe.inputs);
  await probe.close();
  const c = await calibrate(model, model.layers.filter((l) => l.factorizable), data, { samples: 128, runner });
  whitening = { grams: c.grams, calibration: { hash: c.key, data: c.data, samples: c.samples, seed: c.seed } };
});
after(async () => {
  await data?.close();
  await runner?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

test('each level is measured with both methods (same plan, other factors), and with the whitened allocation', async () => {
  const r = await runSweep({ levels: [0.5, 0.75], allocations: ['energy', 'whitened'], methods: ['svd', 'whitened'] }, {
    model, spectra: spectraOnThread(model), dataset: data, runner, latency: false, whitening,
  });
  const ids = r.points.map((p) => p.id).sort();
  assert.deepEqual(ids, ['energy:0.5', 'energy:0.75', 'whitened:0.5', 'whitened:0.75', 'whitened:energy:0.5', 'whitened:energy:0.75', 'whitened:whitened:0.5', 'whitened:whitened:0.75'].sort());
  for (const level of [0.5, 0.75]) {
    const plain = r.points.find((p) => p.id === `energy:${level}`)!;
    const whitened = r.points.find((p) => p.id === `whitened:energy:${level}`)!;
    assert.equal(plain.method, 'svd');
    assert.equal(whitened.method, 'whitened');
    assert.match(whitened.label, /\(whitened SVD\)$/);
    assert.deepEqual(whitened.ranks, plain.ranks, 'same plan, other factors');
    // Other factors, measured (this fixture's inputs are isotropic, so neither need win; whitened.test.ts checks the gain on anisotropic inputs).
    assert.notEqual(whitened.metrics.relativeError, plain.metrics.relativeError);
    const byLoss = r.points.find((p) => p.id === `whitened:whitened:${level}`)!;
    assert.equal((byLoss.plan!.request as { allocation?: string }).allocation, 'whitened');
    assert.ok(byLoss.params <= plain.params + 1);
  }
});

test('the whitened method or allocation without a calibration is refused', async () => {
  for (const spec of [{ levels: [0.5], methods: ['whitened' as const] }, { levels: [0.5], allocations: ['whitened' as const] }]) {
    await assert.rejects(runSweep(spec, { model, spectra: spectraOnThread(model), dataset: data, runner, latency: false }),
      (e) => e instanceof RankscopeError && e.code === 'BAD_ARGUMENT' && /need a calibration/.test(e.message));
  }
});

test('whitened factors truncated from rank K equal the whitened factorization at rank k (product, energy)', () => {
  const layer = model.layers.find((l) => l.factorizable)!;
  const matrices = layerMatrices(model, layer);
  const [big] = whitenedGroups(matrices, 12, whitening.grams.get(layer.name)!, {}, layer.name);
  const [direct] = whitenedGroups(matrices, 5, whitening.grams.get(layer.name)!, {}, layer.name);
  const cut = truncateWhitened(big, 5);
  const p = multiply(cut.a, cut.b, cut.m, cut.k, cut.n);
  const q = multiply(direct.a, direct.b, direct.m, direct.k, direct.n);
  const scale = Math.max(...q.map(Math.abs));
  assert.ok(p.every((x, i) => Math.abs(x - q[i]) <= 1e-9 * scale));
  assert.ok(Math.abs(cut.energyKept - direct.energyKept) < 1e-12);
});

test('rankscope sweep takes the methods from rankscope.json (sweep.methods) when --methods is not given', async () => {
  const task = join(dir, 'rankscope.json');
  writeFileSync(task, JSON.stringify({ model: 'two_branch.onnx', data: 'two_branch.npz', latency: false, sweep: { levels: [0.5], methods: ['svd', 'whitened'] } }));
  const out = join(dir, 'from-task');
  const lines: string[] = [];
  const code = await sweepCommand.run(['--task', task, '-o', out, '--no-cache', '--calibration-samples', '64'], { out: (l) => lines.push(l), err: () => undefined, signal: new AbortController().signal });
  assert.equal(code, 0);
  const report = JSON.parse(readFileSync(join(out, 'sweep.json'), 'utf8')) as { points: { id: string; method?: string }[] };
  assert.deepEqual(report.points.filter((p) => p.method).map((p) => [p.id, p.method]).sort(), [['energy:0.5', 'svd'], ['whitened:energy:0.5', 'whitened']]);
});
