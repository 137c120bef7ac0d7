// Whitened (SVD-LLM) factorization against numpy/torch float64: the calibration Gram (ONNX Runtime
// activations folded in the worker) equals torch's XᵀX / im2col Gram; the whitened truncation loss
// Σ dropped σ²(W·S) equals the measured ‖(W − AB)·X‖²_F; whitened beats plain SVD at equal rank on
// anisotropic inputs; a rank-deficient Gram takes the stated eigen route; the written model runs.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPython } from '../../helpers/python';
import { openOnnx, type OnnxModel } from '../../../src/core/formats/onnx';
import { layerMatrices } from '../../../src/core/model/matrix';
import { calibrate, selectSamples, type Calibration } from '../../../src/core/eval/calibration';
import { openArrayFile } from '../../../src/core/eval/npz';
import { factorize, multiply } from '../../../src/core/compress/factor';
import { storeDense } from '../../../src/core/compress/storage';
import {
  cholesky, DEFAULT_JITTER, symmetricEigen, whitenedGroups, whitenedLossCurve, whiteningOf, type WhitenedFactors,
} from '../../../src/core/compress/whitened';
import { compressToFile, planModel, readEntries } from '../../../src/core/compress';
import { runModel, randomFeeds, relativeDeviation } from './helpers';

const BUILD = readFileSync(join(__dirname, 'fixtures', 'build_whitened.py'), 'utf8');
const CASES: Record<string, number> = { matmul: 5, gemm: 5, gemm_nt: 5, matmul_left: 5, conv1x1: 4, conv3x3: 5, grouped: 2, singular: 6, gather: 3 };

let dir: string;
const models = new Map<string, OnnxModel>();
const calibrations = new Map<string, Calibration>();
const factors = new Map<string, { whitened: WhitenedFactors[]; plain: Float64Array }>();
let measured: Record<string, Record<string, number>>;

/** The stored-layout weight of per-group factors (A·B per group). */
function storedOf(model: OnnxModel, groups: { m: number; n: number; k: number; a: Float64Array; b: Float64Array }[]): Float64Array {
  const layer = model.layers[0];
  return storeDense(layer.layout, groups.map((g) => ({ m: g.m, n: g.n, data: multiply(g.a, g.b, g.m, g.k, g.n) })), layer.tensorShape).data;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rankscope-whitened-'));
  runPython(BUILD, [dir]);
  const job: Record<string, Record<string, number[]>> = {};
  for (const [name, k] of Object.entries(CASES)) {
    const model = await openOnnx(join(dir, `${name}.onnx`));
    models.set(name, model);
    const calibration = await calibrate(model, [model.layers[0]], { data: join(dir, `${name}_data.npz`) }, { samples: 1000, batchSize: 16 });
    calibrations.set(name, calibration);
    const layer = model.layers[0];
    const matrices = layerMatrices(model, layer);
    const whitened = whitenedGroups(matrices, k, calibration.grams.get(layer.name)!, { embeddings: 'counts' }, name);
    const plain = storedOf(model, matrices.map((m) => factorize(m.data, m.rows, m.cols, k)));
    factors.set(name, { whitened, plain });
    job[name] = { whitened: Array.from(storedOf(model, whitened)), plain: Array.from(plain) };
  }
  writeFileSync(join(dir, 'factors.json'), JSON.stringify(job));
  measured = JSON.parse(runPython(BUILD, [dir, 'measure']));
});

after(() => rmSync(dir, { recursive: true, force: true }));

describe('calibration Gram', () => {
  it('equals torch XᵀX (im2col for convs, per group) from the same activations within 1e-9', async () => {
    const reference = await openArrayFile(join(dir, 'grams.npz'));
    for (const name of Object.keys(CASES)) {
      const gram = calibrations.get(name)!.grams.get(models.get(name)!.layers[0].name)!;
      for (const [g, mine] of gram.groups.entries()) {
        const ref = await (await reference.array(`${name}_${g}`)).readAll() as Float64Array;
        assert.equal(mine.length, ref.length, `${name} group ${g}: Gram size`);
        let diff = 0, scale = 0;
        for (let i = 0; i < ref.length; i++) { diff = Math.max(diff, Math.abs(mine[i] - ref[i])); scale = Math.max(scale, Math.abs(ref[i])); }
        assert.ok(diff <= 1e-9 * scale, `${name} group ${g}: max |ΔG| ${diff} vs max |G| ${scale}`);
      }
    }
    await reference.close();
  });

  it('is cached on disk by model, data and selection (same Grams back), and cancels between batches', async () => {
    const model = models.get('conv3x3')!;
    const cacheDir = join(dir, 'calibration-cache');
    const data = { data: join(dir, 'conv3x3_data.npz') };
    const first = await calibrate(model, model.layers, data, { samples: 24, seed: 3, cacheDir });
    const again = await calibrate(model, model.layers, data, { samples: 24, seed: 3, cacheDir });
    const other = await calibrate(model, model.layers, data, { samples: 24, seed: 4, cacheDir });
    assert.deepEqual([first.cached, again.cached, other.cached], [false, true, false]);
    assert.equal(again.key, first.key);
    assert.notEqual(other.key, first.key, 'another sample selection is another calibration');
    assert.deepEqual(Array.from(again.grams.get(model.layers[0].name)!.groups[0]), Array.from(first.grams.get(model.layers[0].name)!.groups[0]));
    const controller = new AbortController();
    let batches = 0;
    await assert.rejects(calibrate(model, model.layers, data, {
      batchSize: 4, signal: controller.signal, onProgress: (done) => { if (done > 0 && ++batches === 2) controller.abort(); },
    }), (e: Error & { code?: string }) => e.code === 'CANCELLED');
    assert.equal(batches, 2, 'no batch ran after the cancel');
  });

  it('records the activation shapes, and draws a seeded subset of samples', () => {
    assert.deepEqual(calibrations.get('conv3x3')!.shapes.get(models.get('conv3x3')!.layers[0].name), [[16, 6, 9, 8]]);
    assert.equal(calibrations.get('matmul')!.samples, 40);
    const a = selectSamples(1000, 50, 7);
    assert.deepEqual(a, selectSamples(1000, 50, 7));
    assert.notDeepEqual(a, selectSamples(1000, 50, 8));
    assert.equal(new Set(a).size, 50);
    assert.ok(a.every((x, i) => i === 0 || x > a[i - 1]));
  });
});

describe('whitened factorization', () => {
  it('predicts the output error ‖(W − AB)X‖²_F from the dropped whitened σ within 1e-6 (MatMul x·W and W·x, Gemm transB 1 and 0, Conv 1×1, k×k, grouped, Gather)', () => {
    for (const name of ['matmul', 'matmul_left', 'gemm', 'gemm_nt', 'conv1x1', 'conv3x3', 'grouped', 'gather']) {
      const groups = factors.get(name)!.whitened;
      const predicted = groups.reduce((s, g) => s + whitenedLossCurve(g.whitened)[g.k], 0);
      const total = groups.reduce((s, g) => s + g.total, 0);
      assert.equal(groups[0].whitening.route, name === 'gather' ? 'diagonal' : 'cholesky', name);
      assert.equal(groups[0].whitening.regularized, 0, name);
      assert.ok(Math.abs(predicted - measured[name].whitened) <= 1e-6 * measured[name].whitened, `${name}: predicted ${predicted}, measured ${measured[name].whitened}`);
      assert.ok(Math.abs(total - measured[name].total) <= 1e-6 * measured[name].total, `${name}: ‖WX‖² ${total} vs ${measured[name].total}`);
    }
  });

  it('beats plain SVD on output error at equal rank (anisotropic inputs, skewed token counts)', () => {
    for (const name of ['matmul', 'matmul_left', 'gemm', 'gemm_nt', 'conv1x1', 'conv3x3', 'grouped', 'gather']) {
      // Whitened is the optimum of this very loss (the data is the calibration data): never worse; on
      // the anisotropic inputs by a clear margin (the Zipf counts of 'gather' are milder).
      const margin = name === 'gather' ? 1 : 0.8;
      assert.ok(measured[name].whitened < margin * measured[name].plain, `${name}: whitened ${measured[name].whitened} vs plain ${measured[name].plain}`);
    }
  });

  it('an embedding keeps uniform row weights by default: its whitened factors are the plain SVD\'s, and the route says so', () => {
    const model = models.get('gather')!;
    const layer = model.layers[0];
    const matrices = layerMatrices(model, layer);
    const [uniform] = whitenedGroups(matrices, CASES.gather, calibrations.get('gather')!.grams.get(layer.name)!, {}, 'gather');
    assert.equal(uniform.whitening.route, 'uniform');
    const [plain] = matrices.map((m) => factorize(m.data, m.rows, m.cols, CASES.gather));
    const product = multiply(uniform.a, uniform.b, uniform.m, uniform.k, uniform.n);
    const reference = multiply(plain.a, plain.b, plain.m, plain.k, plain.n);
    let worst = 0, scale = 0;
    product.forEach((v, i) => { worst = Math.max(worst, Math.abs(v - reference[i])); scale = Math.max(scale, Math.abs(reference[i])); });
    assert.ok(worst <= 1e-9 * scale, `uniform vs plain: max |Δ| ${worst}, scale ${scale}`);
    // The measured output error of counts-whitened factors is lower on the calibration data (it is that loss's optimum).
    assert.ok(measured.gather.whitened < measured.gather.plain);
  });

  it('takes the eigen route with the stated jitter for a rank-deficient Gram, and the loss bounds the measured error', () => {
    const [g] = factors.get('singular')!.whitened;
    assert.equal(g.whitening.route, 'eigen');
    assert.equal(g.whitening.jitter, DEFAULT_JITTER);
    assert.equal(g.whitening.regularized, 20 - 12, 'the 8 directions the inputs never use are raised');
    const predicted = whitenedLossCurve(g.whitened)[g.k];
    const actual = measured.singular.whitened;
    assert.ok(actual <= predicted * (1 + 1e-9), `measured ${actual} ≤ reported ${predicted}`);
    // The regularized Gram adds at most δ = jitter·λmax per direction: the gap is ≤ δ·‖W − AB‖²_F.
    const gram = calibrations.get('singular')!.grams.values().next().value!;
    const lambdaMax = Math.max(...symmetricEigen(gram.groups[0], 20).values);
    const w = layerMatrices(models.get('singular')!, models.get('singular')!.layers[0])[0].data;
    const ab = multiply(g.a, g.b, g.m, g.k, g.n);
    const dw = w.reduce((s, v, i) => s + (v - ab[i]) ** 2, 0);
    assert.ok(predicted - actual <= DEFAULT_JITTER * lambdaMax * dw * (1 + 1e-6), `gap ${predicted - actual} ≤ δ‖ΔW‖² ${DEFAULT_JITTER * lambdaMax * dw}`);
    assert.match(calibrations.get('singular')!.notes.join('\n'), /^$|rank-deficient/);
  });

  it('Cholesky and the symmetric eigen-decomposition reconstruct G (numpy-free identities)', () => {
    const gram = calibrations.get('matmul')!.grams.values().next().value!;
    const n = gram.n;
    const l = cholesky(gram.groups[0], n)!;
    const { values, vectors } = symmetricEigen(gram.groups[0], n);
    let worstL = 0, worstQ = 0, scale = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let llt = 0, qlq = 0;
        for (let p = 0; p < n; p++) { llt += l[i * n + p] * l[j * n + p]; qlq += vectors[p * n + i] * values[p] * vectors[p * n + j]; }
        scale = Math.max(scale, Math.abs(gram.groups[0][i * n + j]));
        worstL = Math.max(worstL, Math.abs(llt - gram.groups[0][i * n + j]));
        worstQ = Math.max(worstQ, Math.abs(qlq - gram.groups[0][i * n + j]));
      }
    }
    assert.ok(worstL <= 1e-12 * scale && worstQ <= 1e-10 * scale, `LLᵀ ${worstL}, QΛQᵀ ${worstQ}, scale ${scale}`);
    assert.equal(whiteningOf(gram.groups[0], n).route, 'cholesky');
  });
});

describe('whitened compression written to ONNX', () => {
  it('runs in ONNX Runtime, records method and calibration hash, and at full rank matches the original within 1e-5', async () => {
    for (const name of ['matmul', 'conv3x3', 'grouped']) {
      const model = models.get(name)!;
      const layer = model.layers[0];
      const calibration = calibrations.get(name)!;
      const full = Math.min(layer.shape[0] / (layer.groups ?? 1), layer.shape[1]);
      const plan = await planModel(model, { rank: full, force: true });
      const out = join(dir, `${name}.whitened.onnx`);
      const whitening = { grams: calibration.grams, calibration: { hash: calibration.key, data: calibration.data, samples: calibration.samples, seed: calibration.seed } };
      await compressToFile(model, plan, out, { whitening });
      const written = await openOnnx(out);
      const [entry] = readEntries(written.proto);
      assert.equal(entry.method, 'whitened');
      assert.equal(entry.calibration?.hash, calibration.key);
      const feeds = randomFeeds({ x: [[3, ...(model.summary.inputs[0].shape!.slice(1) as number[])], 'float32'] }, 5);
      const dev = relativeDeviation(await runModel(model.path, feeds), await runModel(out, feeds));
      assert.ok(dev <= 1e-5, `${name}: full-rank deviation ${dev}`);
    }
  });
});

describe('whitened compression: bad data and the command line', () => {
  const cli = (...args: string[]) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, '../../../src/cli/main.ts'), ...args], { encoding: 'utf8' });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };

  it('refuses NaN activations, naming the layer (never a silent plain SVD)', async () => {
    runPython(String.raw`
import numpy as np, onnx, sys, os
from onnx import helper, TensorProto, numpy_helper
d = sys.argv[1]
W = np.ones((6, 4), np.float32)
g = helper.make_graph([helper.make_node('Log', ['x'], ['l']), helper.make_node('MatMul', ['l', 'W'], ['y'], name='/fc/MatMul')], 'nan',
    [helper.make_tensor_value_info('x', TensorProto.FLOAT, ['N', 6])], [helper.make_tensor_value_info('y', TensorProto.FLOAT, ['N', 4])], [numpy_helper.from_array(W, 'W')])
m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]); m.ir_version = 8
onnx.save(m, os.path.join(d, 'nan.onnx'))
np.savez(os.path.join(d, 'nan.npz'), x=-np.ones((8, 6), np.float32))
`, [dir]);
    const model = await openOnnx(join(dir, 'nan.onnx'));
    await assert.rejects(calibrate(model, model.layers, { data: join(dir, 'nan.npz') }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'NUMERIC');
      assert.match(e.message, /Layer 'fc'.*NaN or Inf/);
      return true;
    });
  });

  it('exit 2 with one line when --method whitened has no calibration data, and for data that does not fit', () => {
    const noData = cli('compress', join(dir, 'matmul.onnx'), '-o', join(dir, 'x.onnx'), '--rank', '2', '--method', 'whitened');
    assert.equal(noData.code, 2, noData.err);
    assert.match(noData.err, /whitened factorization needs calibration data: give --data/);
    const wrong = cli('compress', join(dir, 'matmul.onnx'), '-o', join(dir, 'x.onnx'), '--rank', '2', '--method', 'whitened', '--data', join(dir, 'gemm_data.npz'));
    assert.equal(wrong.code, 2, wrong.err);
    assert.match(wrong.err, /has shape .*model input 'x' expects/);
    assert.equal(wrong.err.trim().split('\n').length, 1);
    const stray = cli('compress', join(dir, 'matmul.onnx'), '-o', join(dir, 'x.onnx'), '--rank', '2', '--calibration-samples', '9');
    assert.equal(stray.code, 2);
    assert.match(stray.err, /need --method whitened/);
  });

  it('compress --method whitened --allocation whitened writes a model that records the method and says what the whitening needed', async () => {
    const out = join(dir, 'singular.cli.onnx');
    const r = cli('compress', join(dir, 'singular.onnx'), '-o', out, '--budget', '0.4', '--method', 'whitened', '--allocation', 'whitened', '--data', join(dir, 'singular_data.npz'), '--no-cache');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^calibration: 40 samples of .*singular_data\.npz \(seed 0\), 1 layers/m);
    assert.match(r.out, /^whitened: output energy kept on the calibration data/m);
    assert.match(r.err, /singular: input Gram is rank-deficient or ill-conditioned; eigen-decomposed and 8 directions raised to 1e-6·λmax/);
    const [entry] = readEntries((await openOnnx(out)).proto);
    assert.equal(entry.method, 'whitened');
    assert.equal(entry.calibration?.whitening[0].route, 'eigen');
    // --method whitened allocates a budget by output error unless --allocation says otherwise.
    for (const [flags, allocation] of [[[], 'whitened'], [['--allocation', 'energy'], 'energy']] as const) {
      const saved = join(dir, `singular.${allocation}.plan.json`);
      const d = cli('compress', join(dir, 'singular.onnx'), '--budget', '0.4', '--method', 'whitened', '--data', join(dir, 'singular_data.npz'), '--dry-run', '--save-plan', saved, ...flags);
      assert.equal(d.code, 0, d.err);
      assert.equal(JSON.parse(readFileSync(saved, 'utf8')).request.allocation, allocation);
    }
    // A saved plan applies with whitened factors too (its layers are the ones calibrated).
    const plan = join(dir, 'gemm.plan.json');
    assert.equal(cli('compress', join(dir, 'gemm.onnx'), '--rank', '3', '--dry-run', '--save-plan', plan).code, 0);
    const fromPlan = join(dir, 'gemm.plan.onnx');
    const p = cli('compress', join(dir, 'gemm.onnx'), '-o', fromPlan, '--plan', plan, '--method', 'whitened', '--data', join(dir, 'gemm_data.npz'));
    assert.equal(p.code, 0, p.err);
    // An embedding: uniform rows by default (stated), the counts with --whiten-embeddings.
    for (const [flags, route, note] of [[[], 'uniform', /gather: an embedding \(Gather\); its rows keep uniform weights/], [['--whiten-embeddings'], 'diagonal', /^$/]] as const) {
      const gatherOut = join(dir, `gather.${route}.onnx`);
      const g = cli('compress', join(dir, 'gather.onnx'), '-o', gatherOut, '--rank', '3', '--method', 'whitened', '--data', join(dir, 'gather_data.npz'), '--no-cache', ...flags);
      assert.equal(g.code, 0, g.err);
      assert.match(g.err.replace(/^(?!note).*$/gm, '').trim(), note);
      assert.equal(readEntries((await openOnnx(gatherOut)).proto)[0].calibration?.whitening[0].route, route);
    }
    const [fromPlanEntry] = readEntries((await openOnnx(fromPlan)).proto);
    assert.deepEqual([fromPlanEntry.method, fromPlanEntry.rank, fromPlanEntry.calibration?.whitening[0].route], ['whitened', 3, 'cholesky']);
  });
});
