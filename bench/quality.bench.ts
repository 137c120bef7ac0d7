// `npm run bench:quality`: what data-aware factorization buys before any fine-tuning. Two models:
// - the bundled Transformer (media/samples/skeleton-transformer.onnx, NTU preset as in
//   media/samples/rankscope.json): calibrated on x_train, scored on the 405 held-out x_test clips;
// - a BERT-style encoder (4 blocks, d 128, FFN 512, 1000-token embedding; BERT's initialisation)
//   trained to its ceiling on a synthetic ordered-topic task and exported by this machine's torch (bench/quality_bert.py;
//   cached in bench/.data/): calibrated on its train split, scored on 1000 held-out test samples.
// At −30/−50/−70 % of the factorizable parameters: plain SVD (energy allocation), 'whitened' as
// `compress --method whitened --budget` does it (whitened factors, ranks from the whitened-loss
// allocation), and whitened factors at plain's ranks (which separates factors from allocation)
// (and, on a model with an embedding, whitened factors whose embedding rows are weighted by their
// calibration counts, against the default's uniform rows).
// Reported per point: top-1, top-1 agreement with the original, relative output error
// ‖y − y₀‖/‖y₀‖ (held-out data), and the time of the calibration pass and of the factorization.
// Where whitened factors at plain's ranks do not beat plain SVD, the bench says which layer it is:
// each planned layer alone, plain vs whitened factors, end to end (the layers where whitened
// alone is worse), and each layer's output error ‖(W − W′)X‖² on the held-out data's Gram, so a
// layout bug (whitened worse on its own objective) is told apart from an objective that does not
// match what the model uses. --sequential adds 'whitened sequential': each planned layer (in model
// order) calibrated on the model whose earlier planned layers are already whitened-compressed (one
// calibration pass per planned layer; SVD-LLM/ASVD-style), at plain's ranks. --sensitivity adds
// the probe-based allocation (a sweep's per-layer probes on the calibration samples, KL) with plain
// and whitened factors, and prints what its probes cost against the whitened allocation's pass.
// Options: --samples N (calibration samples, default 256), --only transformer|bert, --no-attribution, --sequential, --sensitivity,
// --transformer MODEL.onnx (default the bundled media/samples/skeleton-transformer.onnx; it is
// scored on media/samples/skeleton-actions.npz with the NTU preset), --bert DIR (a folder holding
// bert.onnx, bert.npz, bert.json as bench/quality_bert.py writes them; default bench/.data/bert-<hash>).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { factorizePlan, applyPlan, planModel, withWhitenedSpectra, type WhiteningSource } from '../src/core/compress';
import type { Plan } from '../src/core/compress/plan';
import type { GroupFactors } from '../src/core/compress/pool';
import { multiply } from '../src/core/compress/factor';
import type { LayerGram } from '../src/core/compress/whitened';
import { calibrate, selectSamples } from '../src/core/eval/calibration';
import { loadDataset, type DatasetSpec } from '../src/core/eval/dataset';
import { evaluate } from '../src/core/eval/evaluate';
import { OrtRunner } from '../src/core/eval/runner';
import { runSweep } from '../src/core/eval/sweep';
import { encodeOnnx, openOnnx, type OnnxModel } from '../src/core/formats/onnx';
import { computeSpectra } from '../src/core/linalg';
import { layerMatrices } from '../src/core/model/matrix';
import { BENCH_DATA, BENCH_DIR, ROOT } from './paths';

const CUTS = [0.3, 0.5, 0.7];
const arg = (name: string) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : undefined; };
const SAMPLES = Number(arg('--samples') ?? 256);
const ONLY = arg('--only');
const NO_ATTRIBUTION = process.argv.includes('--no-attribution');
const SEQUENTIAL = process.argv.includes('--sequential');
const SENSITIVITY = process.argv.includes('--sensitivity');
const DATA_DIR = BENCH_DATA;
const SAMPLE_DIR = join(ROOT, 'media/samples');

interface Case {
  name: string;
  model: string;
  calibration: DatasetSpec;
  heldOut: DatasetSpec;
}

function bertCase(): Case {
  const script = join(BENCH_DIR, 'quality_bert.py');
  const tag = createHash('sha256').update(readFileSync(script)).digest('hex').slice(0, 12);
  const dir = arg('--bert') ?? join(DATA_DIR, `bert-${tag}`);
  if (!existsSync(join(dir, 'bert.onnx'))) {
    mkdirSync(dir, { recursive: true });
    console.log(`training the BERT-style encoder (bench/quality_bert.py → ${dir}) …`);
    const r = spawnSync('/usr/bin/python3', [script, dir], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0) throw new Error('bench/quality_bert.py failed');
  }
  const info = JSON.parse(readFileSync(join(dir, 'bert.json'), 'utf8')) as { test_top1: number; seconds: number };
  console.log(`BERT-style encoder: test top-1 ${(info.test_top1 * 100).toFixed(2)} % in PyTorch, trained in ${info.seconds.toFixed(0)} s`);
  const data = join(dir, 'bert.npz');
  return {
    name: 'bert', model: join(dir, 'bert.onnx'),
    calibration: { data, inputs: { input_ids: 'x_train' }, labels: 'y_train' },
    heldOut: { data, inputs: { input_ids: 'x_test' }, labels: 'y_test' },
  };
}

function transformerCase(): Case {
  const data = join(SAMPLE_DIR, 'skeleton-actions.npz');
  return {
    name: 'transformer', model: arg('--transformer') ?? join(SAMPLE_DIR, 'skeleton-transformer.onnx'),
    calibration: { data, preset: 'ntu', inputs: { skeleton: 'x_train' }, labels: 'y_train' },
    heldOut: { data, preset: 'ntu', inputs: { skeleton: 'x_test' }, labels: 'y_test' },
  };
}

interface Row { model: string; cut: number; variant: string; top1: number; agreement: number; relativeError: number; compressSeconds: number; params: number }

/** ‖(W − W′)X‖²_F of a layer's factors from an input Gram (per group), or Σ count·‖ΔW row‖² for an embedding. */
function outputError(model: OnnxModel, layer: string, factors: GroupFactors[], gram: LayerGram): number {
  const matrices = layerMatrices(model, model.layers.find((l) => l.name === layer)!);
  let total = 0;
  matrices.forEach((mt, g) => {
    const f = factors[g];
    const ab = multiply(f.a, f.b, f.m, f.k, f.n);
    const G = gram.groups[g];
    const { rows: m, cols: n } = mt;
    const d = new Float64Array(n);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) d[j] = mt.data[i * n + j] - ab[i * n + j];
      if (gram.side === 'rows') { for (let j = 0; j < n; j++) total += G[i] * d[j] * d[j]; continue; }
      for (let p = 0; p < n; p++) { let t = 0; for (let q = 0; q < n; q++) t += G[p * n + q] * d[q]; total += d[p] * t; }
    }
  });
  return total;
}

async function runCase(c: Case, rows: Row[]): Promise<{ calibrationSeconds: number; original: number }> {
  const model = await openOnnx(c.model);
  const runner = OrtRunner.create({ intraOpThreads: 2 });
  try {
    const session = await runner.open(c.model);
    const heldOut = await loadDataset(c.heldOut, session.inputs);
    const base = await evaluate(session, heldOut, { batchSize: 64, keepOutputs: true });
    await session.close();
    const layers = model.layers.filter((l) => l.factorizable);
    const t0 = performance.now();
    const calibration = await calibrate(model, layers, c.calibration, { samples: SAMPLES, runner, batchSize: 32 });
    const calibrationSeconds = (performance.now() - t0) / 1000;
    console.log(`${c.name}: ${layers.length} layers, calibration on ${calibration.samples} samples of the train split in ${calibrationSeconds.toFixed(1)} s; original held-out top-1 ${(base.metrics.top1! * 100).toFixed(2)} %`);
    const hasEmbedding = layers.some((l) => l.op === 'Gather');
    const whitening: WhiteningSource = { grams: calibration.grams, calibration: { hash: calibration.key, data: calibration.data, samples: calibration.samples, seed: 0 } };
    const measure = async (name: string, plan: Plan, factors: Map<string, GroupFactors[]>, whitened: boolean, source = whitening) => {
      const bytes = encodeOnnx(applyPlan(model, plan, { factors, ...(whitened && { whitening: source }) }));
      const s = await runner.open(bytes, name);
      const r = await evaluate(s, heldOut, { batchSize: 64, reference: base.outputs });
      await s.close();
      return r;
    };
    let heldOutGrams: Map<string, LayerGram> | undefined;
    /** Which layers make whitened at plain's ranks lose: each alone, end to end, and its output error on the held-out Gram. */
    const attribute = async (cut: number, plan: Plan, plain: Map<string, GroupFactors[]>, whitenedFactors: Map<string, GroupFactors[]>) => {
      heldOutGrams ??= (await calibrate(model, layers, c.heldOut, { samples: heldOut.size, runner, batchSize: 32 })).grams;
      for (const row of plan.layers.filter((r) => !r.skipped)) {
        const one = { ...plan, layers: [row] };
        const [p, w] = [await measure('plain', one, plain, false), await measure('whitened', one, whitenedFactors, true)];
        const [ep, ew] = [outputError(model, row.layer, plain.get(row.layer)!, heldOutGrams.get(row.layer)!), outputError(model, row.layer, whitenedFactors.get(row.layer)!, heldOutGrams.get(row.layer)!)];
        // Worse end to end on the output error (top-1 moves by single samples here, so it is shown, not judged).
        const worse = w.metrics.relativeError! > p.metrics.relativeError!;
        console.log(`    ${worse ? 'WORSE' : 'ok   '} −${cut * 100} % ${row.layer} alone (rank ${row.k}): top-1 ${(p.metrics.top1! * 100).toFixed(2)} → ${(w.metrics.top1! * 100).toFixed(2)} %, rel. error ${p.metrics.relativeError!.toExponential(2)} → ${w.metrics.relativeError!.toExponential(2)}; its own output error on held-out data ${ep.toExponential(2)} → ${ew.toExponential(2)}${ew > ep ? ' (whitened worse on its own objective: a bug)' : ''}`);
      }
      // The same plan without its embeddings (factorized alike by both: uniform rows), plain vs whitened.
      const rest = plan.layers.filter((r) => !r.skipped && layers.find((l) => l.name === r.layer)?.op !== 'Gather');
      if (rest.length < plan.layers.filter((r) => !r.skipped).length) {
        const without = { ...plan, layers: rest };
        const [p, w] = [await measure('plain', without, plain, false), await measure('whitened', without, whitenedFactors, true)];
        console.log(`    −${cut * 100} % all ${rest.length} planned layers but the embeddings: rel. error ${p.metrics.relativeError!.toExponential(2)} plain → ${w.metrics.relativeError!.toExponential(2)} whitened`);
      }
    };
    /** Each planned layer whitened by the activations of the model whose earlier planned layers are already compressed. */
    const sequentialFactors = async (plan: Plan) => {
      const grams = new Map(calibration.grams);
      const factors = new Map<string, GroupFactors[]>();
      mkdirSync(DATA_DIR, { recursive: true });
      const partialFile = join(DATA_DIR, `${c.name}.sequential.onnx`);
      for (const row of plan.layers.filter((r) => !r.skipped)) {
        if (factors.size) {
          const upstream = { ...plan, layers: plan.layers.filter((r) => factors.has(r.layer)) };
          writeFileSync(partialFile, encodeOnnx(applyPlan(model, upstream, { factors, whitening: { ...whitening, grams } })));
          const partial = await openOnnx(partialFile);
          const stage = await calibrate(partial, partial.layers.filter((l) => l.name === row.layer), c.calibration, { samples: SAMPLES, runner, batchSize: 32 });
          grams.set(row.layer, stage.grams.get(row.layer)!);
        }
        const one = await factorizePlan(model, { ...plan, layers: [row] }, { whitening: { ...whitening, grams } });
        factors.set(row.layer, one.get(row.layer)!);
      }
      rmSync(partialFile, { force: true });
      return { factors, grams };
    };
    const score = async (variant: string, cut: number, plan: Plan, factors: Map<string, GroupFactors[]>, whitened: boolean, seconds: number, source = whitening) => {
      const r = await measure(`${c.name} ${variant} −${cut * 100} %`, plan, factors, whitened, source);
      const row = { model: c.name, cut, variant, top1: r.metrics.top1!, agreement: r.metrics.agreement!, relativeError: r.metrics.relativeError!, compressSeconds: seconds, params: plan.totals.paramsAfter };
      rows.push(row);
      console.log(`  −${cut * 100} %  ${variant.padEnd(23)} top-1 ${(row.top1 * 100).toFixed(2).padStart(6)} %  agreement ${(row.agreement * 100).toFixed(2).padStart(6)} %  rel. error ${row.relativeError.toExponential(3)}  factorize ${seconds.toFixed(1)} s`);
      return row;
    };
    // The probe-based allocation's plans, from a sweep on the same calibration samples (the probes are its cost).
    let sensitivityPlans: Map<number, Plan> | undefined;
    let probeSeconds = 0;
    if (SENSITIVITY) {
      const t = performance.now();
      const session = await runner.open(c.model);
      const probeSet = await loadDataset(c.calibration, session.inputs);
      await session.close();
      const spectra = await computeSpectra(model, { order: 'module' });
      const sweep = await runSweep({ levels: CUTS, allocations: ['sensitivity'] }, {
        model, spectra, dataset: probeSet.subset(Int32Array.from(selectSamples(probeSet.size, SAMPLES, 0))), runner, batchSize: 32, latency: false,
        sensitivity: { samples: SAMPLES, measure: 'kl' },
      });
      await probeSet.close();
      probeSeconds = (performance.now() - t) / 1000;
      sensitivityPlans = new Map(sweep.points.filter((p) => p.allocation === 'sensitivity' && p.plan).map((p) => [p.level!, p.plan!]));
      console.log(`${c.name}: sensitivity probes ${sweep.calibration?.probes ?? 0} on ${sweep.calibration?.samples ?? 0} samples in ${probeSeconds.toFixed(1)} s (the whitened allocation needs only the calibration pass: ${calibrationSeconds.toFixed(1)} s)`);
    }
    for (const cut of CUTS) {
      let t = performance.now();
      const plan = await planModel(model, { budget: cut });
      const plain = await factorizePlan(model, plan);
      await score('plain svd', cut, plan, plain, false, (performance.now() - t) / 1000);
      t = performance.now();
      const whitenedFactors = await factorizePlan(model, plan, { whitening });
      const row = await score('whitened, plain ranks', cut, plan, whitenedFactors, true, (performance.now() - t) / 1000);
      const plainRow = rows.find((x) => x.model === c.name && x.cut === cut && x.variant === 'plain svd')!;
      if (!NO_ATTRIBUTION && (row.relativeError >= plainRow.relativeError || row.top1 < plainRow.top1)) await attribute(cut, plan, plain, whitenedFactors);
      if (hasEmbedding) {
        // What the default (uniform embedding rows) is measured against: rows weighted by their calibration counts.
        t = performance.now();
        const counted = { ...whitening, embeddings: 'counts' as const };
        await score('whitened, count rows', cut, plan, await factorizePlan(model, plan, { whitening: counted }), true, (performance.now() - t) / 1000, counted);
      }
      if (SEQUENTIAL) {
        t = performance.now();
        const { factors, grams } = await sequentialFactors(plan);
        await score('whitened sequential', cut, plan, factors, true, (performance.now() - t) / 1000, { ...whitening, grams });
      }
      t = performance.now();
      const byLoss = await planModel(model, await withWhitenedSpectra(model, { budget: cut, allocation: 'whitened' }, whitening));
      const byLossFactors = await factorizePlan(model, byLoss, { whitening });
      await score('whitened', cut, byLoss, byLossFactors, true, (performance.now() - t) / 1000);
      const bySensitivity = sensitivityPlans?.get(cut);
      if (bySensitivity) {
        t = performance.now();
        await score('sensitivity, plain', cut, bySensitivity, await factorizePlan(model, bySensitivity), false, (performance.now() - t) / 1000);
        t = performance.now();
        await score('sensitivity, whitened', cut, bySensitivity, await factorizePlan(model, bySensitivity, { whitening }), true, (performance.now() - t) / 1000);
      } else if (sensitivityPlans) console.log(`  −${cut * 100} %  sensitivity: no plan reaches this budget`);
    }
    await heldOut.close();
    return { calibrationSeconds, original: base.metrics.top1! };
  } finally {
    await runner.dispose();
  }
}

async function main(): Promise<void> {
  console.log(`load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}; calibration samples ${SAMPLES}`);
  const cases = [...(ONLY !== 'bert' ? [transformerCase()] : []), ...(ONLY !== 'transformer' ? [bertCase()] : [])];
  const rows: Row[] = [];
  const summary: Record<string, { calibrationSeconds: number; original: number }> = {};
  for (const c of cases) summary[c.name] = await runCase(c, rows);
  // Where whitened does not beat plain (relative output error or top-1), said plainly.
  for (const r of rows.filter((x) => x.variant !== 'plain svd')) {
    const plain = rows.find((x) => x.model === r.model && x.cut === r.cut && x.variant === 'plain svd')!;
    if (r.relativeError >= plain.relativeError || r.top1 < plain.top1) {
      console.log(`NOTE ${r.model} −${r.cut * 100} % ${r.variant}: does not beat plain (top-1 ${(r.top1 * 100).toFixed(2)} vs ${(plain.top1 * 100).toFixed(2)} %, rel. error ${r.relativeError.toExponential(2)} vs ${plain.relativeError.toExponential(2)})`);
    }
  }
  mkdirSync(DATA_DIR, { recursive: true });
  writeFileSync(join(DATA_DIR, 'quality.json'), JSON.stringify({ samples: SAMPLES, summary, rows }, null, 2));
  console.log(`figures in ${join(DATA_DIR, 'quality.json')}`);
}

main().catch((e) => { console.error(e); process.exit(1); });

