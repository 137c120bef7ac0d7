// A sweep's FactorBank factorizes each layer once, at the largest rank its points need, and
// serves every point by truncation: counted here, per layer, across points and repeated calls.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTwoBranchFixture, spectraOnThread } from './fixtures';
import { openOnnx, type OnnxModel } from '../../../src/core/formats/onnx';
import { makePlan, type Plan } from '../../../src/core/compress/plan';
import { factorize, multiply } from '../../../src/core/compress/factor';
import { matricesOf } from '../../../src/core/compress/spectra';
import { FactorBank } from '../../../src/core/eval/factorBank';

let dir: string;
let model: OnnxModel;
let plans: Plan[];
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rankscope-bank-'));
  writeTwoBranchFixture(dir);
  model = await openOnnx(join(dir, 'two_branch.onnx'));
  const spectra = spectraOnThread(model);
  plans = [0.5, 0.8, 0.95].map((energy) => makePlan(model, spectra, { energy, force: true }));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const active = (plan: Plan) => plan.layers.filter((r) => !r.skipped);

test('every layer is factorized once for all points, at the largest rank any point needs', async () => {
  const bank = new FactorBank(model, undefined, 1);
  await bank.ensure(plans);
  const layers = new Set(plans.flatMap((p) => active(p).map((r) => r.layer)));
  assert.ok(layers.size >= 2);
  assert.deepEqual(new Set(bank.factorizations.keys()), layers);
  for (const [layer, count] of bank.factorizations) assert.equal(count, 1, `${layer} factorized ${count} times`);
  // The same points again, or any subset of them: nothing new.
  await bank.ensure(plans);
  await bank.ensure([plans[0]]);
  await bank.ensure([plans[2], plans[1]]);
  for (const [layer, count] of bank.factorizations) assert.equal(count, 1, `${layer} factorized again (${count})`);
  // Each point gets its own rank, and the truncation is that rank's factorization.
  for (const plan of plans) {
    const factors = bank.factorsFor(plan);
    for (const row of active(plan)) {
      const [g] = factors.get(row.layer)!;
      assert.equal(g.k, row.k);
      const layer = model.layers.find((l) => l.name === row.layer)!;
      const [m] = matricesOf(model, layer);
      const direct = factorize(m.data, m.rows, m.cols, row.k);
      const a = multiply(g.a, g.b, g.m, g.k, g.n), b = multiply(direct.a, direct.b, direct.m, direct.k, direct.n);
      let diff = 0, norm = 0;
      for (let i = 0; i < a.length; i++) {
        diff = Math.max(diff, Math.abs(a[i] - b[i]));
        norm = Math.max(norm, Math.abs(b[i]));
      }
      assert.ok(diff <= 1e-5 * norm, `${row.layer} at k=${row.k}: truncated product differs by ${diff}`);
    }
  }
});

test('points asked one by one in decreasing rank reuse the first factorization', async () => {
  const bank = new FactorBank(model, undefined, 1);
  for (const plan of [...plans].reverse()) await bank.ensure([plan]);
  for (const [layer, count] of bank.factorizations) assert.equal(count, 1, `${layer} factorized ${count} times`);
});
