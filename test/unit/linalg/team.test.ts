// Two threads on one matrix (team.ts): with a helper worker attached, the Gram, the blocked
// reduction and the triplets give the single-thread results (to 1e-12·σ_max: only the order of
// the symv's partial sums differs) and match scipy; the pool lends a worker to one large job.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { singularValuesViaGram } from '../../../src/core/linalg/singularValues';
import { tripletsViaGram } from '../../../src/core/linalg/triplets';
import { endTeam, leadTeam, newTeam, runTasks, teamSize, TEAM_MIN_ORDER } from '../../../src/core/linalg/team';
import { computeSpectra } from '../../../src/core/linalg/spectra';
import { LazyTensor } from '../../../src/core/model/tensor';
import type { Model } from '../../../src/core/model/types';
import { kernelMemory } from '../../../src/core/linalg/wasm';
import { maxAbsDiff, scipyCases } from './reference';

const [big] = scipyCases({ big: 'rng.standard_normal((1100, 1300)) * 0.02' });
assert.ok(Math.min(big.rows, big.cols) >= TEAM_MIN_ORDER);

async function withHelper<T>(work: () => T): Promise<T> {
  const team = newTeam();
  leadTeam(team);
  const helper = new Worker(join(__dirname, 'teamHelper.ts'), { execArgv: ['--require', 'tsx/cjs'] });
  const done = new Promise((resolve, reject) => {
    helper.once('message', resolve);
    helper.once('error', reject);
  });
  helper.postMessage(team);
  try {
    for (let i = 0; i < 600 && teamSize() === 1; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(teamSize(), 2, 'the helper attached');
    return work();
  } finally {
    endTeam();
    assert.equal(await done, 'done', 'the helper left when the job ended');
    await helper.terminate();
  }
}

test('with a helper attached: singular values and triplets equal the single-thread ones, and scipy\'s', async () => {
  const alone = singularValuesViaGram(big.data, big.rows, big.cols);
  const aloneT = tripletsViaGram(big.data, big.rows, big.cols, 20);
  const [teamed, teamedT] = await withHelper(() => [singularValuesViaGram(big.data, big.rows, big.cols), tripletsViaGram(big.data, big.rows, big.cols, 20)] as const);
  assert.ok(maxAbsDiff(teamed, alone) <= 1e-12 * alone[0], `values differ by ${maxAbsDiff(teamed, alone)}`);
  assert.ok(maxAbsDiff(teamed, big.reference) <= 1e-9 * big.reference[0], `vs scipy: ${maxAbsDiff(teamed, big.reference) / big.reference[0]}`);
  assert.ok(maxAbsDiff(teamedT.s, aloneT.s) <= 1e-12 * alone[0]);
  // Vectors up to sign.
  for (let t = 0; t < 20; t++) {
    let dot = 0;
    for (let j = 0; j < big.cols; j++) dot += teamedT.v[j * 20 + t] * aloneT.v[j * 20 + t];
    assert.ok(Math.abs(Math.abs(dot) - 1) <= 1e-9, `v_${t}: |cos| = ${Math.abs(dot)}`);
  }
});

test('with a helper attached: the full route (all vectors by QL, the back-transformation and X·Z split) gives the single-thread vectors', async () => {
  const k = 30;
  const alone = tripletsViaGram(big.data, big.rows, big.cols, k, 'full');
  const teamed = await withHelper(() => tripletsViaGram(big.data, big.rows, big.cols, k, 'full'));
  assert.ok(maxAbsDiff(teamed.s, alone.s) <= 1e-12 * alone.s[0]);
  assert.ok(maxAbsDiff(teamed.s, big.reference.subarray(0, k)) <= 1e-9 * big.reference[0]);
  for (let t = 0; t < k; t++) {
    let dot = 0;
    for (let j = 0; j < big.cols; j++) dot += teamed.v[j * k + t] * alone.v[j * k + t];
    assert.ok(Math.abs(Math.abs(dot) - 1) <= 1e-9, `v_${t}: |cos| = ${Math.abs(dot)}`);
  }
});

test('without a helper, runTasks runs every task on this thread', () => {
  assert.equal(teamSize(), 1);
  const F = kernelMemory(16);
  F.fill(0, 0, 16);
  F.set([1, 2, 3, 4], 0); // X (1×4), y = ones
  F.set([1, 1, 1, 1], 4);
  runTasks([[['dotRows', 1, 4, 0, 4, 4 * 8, 9 * 8]], [['dotRows', 1, 2, 0, 4, 4 * 8, 10 * 8]]]);
  assert.equal(kernelMemory(16)[9], 10);
  assert.equal(kernelMemory(16)[10], 3);
});

test('with a helper, every task of a step runs exactly once, over many steps', async () => {
  // Each task adds 1 to its own slot (axpyRows with coefficient −1 on a row of ones): a task run
  // twice or skipped shows as a 2 or a 0.
  const tasks = 64, steps = 200;
  await withHelper(() => {
    const F0 = kernelMemory(4096); // the team's memory, from here on
    F0.fill(0, 0, 4096);
    F0[0] = -1; // the coefficient
    F0.fill(1, 8, 16); // X: one row of ones
    for (let s = 0; s < steps; s++) {
      runTasks(Array.from({ length: tasks }, (_, t) => [['axpyRows', 1, 1, 8 * 8, 1, 0, (100 + t) * 8]]));
    }
  });
  const F = kernelMemory(4096);
  for (let t = 0; t < tasks; t++) assert.equal(F[100 + t], steps, `task ${t} ran ${F[100 + t]} times in ${steps} steps`);
});

test('the pool lends its second worker to a single large matrix, with the same values', async () => {
  const bytes = new Uint8Array(big.data.buffer.slice(0));
  const model = {
    summary: { path: 'one large layer' },
    layers: [{ name: 'w', op: 'Gemm', weight: 'w', shape: [big.rows, big.cols], tensorShape: [big.rows, big.cols], layout: 'out_in', dtype: 'float32', params: big.data.length, biasParams: 0, bytes: bytes.length, nodes: ['w'], factorizable: true }],
    tensor: () => new LazyTensor('w', 'float32', [big.rows, big.cols], () => bytes),
  } as unknown as Model;
  const [r] = await computeSpectra(model, { threads: 2 });
  assert.ok(maxAbsDiff(r.singularValues, big.reference) <= 1e-9 * big.reference[0]);
});
