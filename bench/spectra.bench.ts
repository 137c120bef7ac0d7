// `npm run bench:spectra`: all singular values of BERT-base-shaped float32 matrices
// (12 × [4 of 768×768, 768×3072, 3072×768] = 72 matrices, 85 M parameters) through
// computeSpectra (worker-thread pool, WASM kernels), against LAPACK on the same matrices in the
// same run: scipy svdvals (gesdd) and the Gram route (WᵀW in float64, then eigvalsh).
// Prints wall times, time to the first layer, the ratio to the faster LAPACK route, the
// accuracy against svdvals, and a cache-hit reopen. Then the large set (4096×4096, 4096×11008,
// 4096×25088) and the BERT shapes one matrix at a time, each in its own process on both sides
// (BENCH_LARGE=0 skips this, =bert keeps only the BERT shapes): our side through computeSpectra,
// so a large matrix gets both cores (its time includes starting the pool); time, peak RSS, ratio
// to the faster LAPACK route, error, and the cost against the size in a table. numpy's BLAS runs
// without the OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE overrides this machine may set (they slow it
// down); threadpoolctl's report of its kernel is printed when available. Figures are noisy on a
// shared machine: the load average is printed with them.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { computeSpectra } from '../src/core/linalg/spectra';
import { LazyTensor } from '../src/core/model/tensor';
import type { Layer, Model } from '../src/core/model/types';
import { testPython } from '../test/helpers/python';
import { PEAK_RSS_PY, peakRss } from './peakRss';
import { rerunArgs } from './paths';

const BLOCKS = Number(process.env.BENCH_BLOCKS ?? 12);
const shapes: [string, number, number][] = [];
for (let b = 0; b < BLOCKS; b++) {
  for (const p of ['q', 'k', 'v', 'o']) shapes.push([`encoder.layer.${b}.attention.${p}`, 768, 768]);
  shapes.push([`encoder.layer.${b}.intermediate.dense`, 3072, 768]);
  shapes.push([`encoder.layer.${b}.output.dense`, 768, 3072]);
}

const dir = process.argv[2] === '--one' ? '' : mkdtempSync(join(tmpdir(), 'rankscope-bench-spectra-'));
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

/** The reference Python, without the BLAS overrides that slow numpy down here. */
function referenceEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}

function python(code: string, args: string[]): string {
  const r = spawnSync(testPython(), ['-c', code, ...args], { maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'inherit'], env: referenceEnv() });
  if (r.status !== 0) throw new Error(`python failed (${r.status})`);
  return r.stdout.toString();
}

async function main(): Promise<void> {
  console.log(`bench:spectra — ${shapes.length} matrices, ${(shapes.reduce((s, [, r, c]) => s + r * c, 0) / 1e6).toFixed(1)} M params; ${availableParallelism()} cores; load ${load()}`);

  // Matrices by numpy (seeded; std 0.02 like BERT's init), LAPACK timings on the same data.
  const py = JSON.parse(python(`
import json, sys, time, numpy as np, scipy, scipy.linalg as sl
shapes = json.loads(sys.argv[2]); out = sys.argv[1]
rng = np.random.default_rng(0)
mats = [(rng.standard_normal((r, c), dtype=np.float32) * np.float32(0.02)) for _, r, c in shapes]
with open(out + '/weights.f32', 'wb') as f:
    for m in mats: f.write(m.tobytes())
t = time.perf_counter(); ref = [sl.svdvals(m.astype(np.float64), check_finite=False) for m in mats]; t_svd = time.perf_counter() - t
t = time.perf_counter()
for m in mats:
    a = m.astype(np.float64)
    g = a.T @ a if a.shape[0] >= a.shape[1] else a @ a.T
    np.linalg.eigvalsh(g)
t_gram = time.perf_counter() - t
np.concatenate(ref).astype('<f8').tofile(out + '/svdvals.f64')
print(json.dumps({'svdvals': t_svd, 'gram': t_gram, 'numpy': np.__version__, 'scipy': scipy.__version__}))
`, [dir, JSON.stringify(shapes)]));
  console.log(`LAPACK (numpy ${py.numpy}, scipy ${py.scipy}): svdvals ${py.svdvals.toFixed(2)} s, Gram+eigvalsh ${py.gram.toFixed(2)} s  (load ${load()})`);

  const bytes = readFileSync(join(dir, 'weights.f32'));
  const refBytes = readFileSync(join(dir, 'svdvals.f64'));
  const reference = new Float64Array(refBytes.buffer, refBytes.byteOffset, refBytes.byteLength / 8);
  const model = bertModel(bytes);

  // Cold: nothing cached yet (the run fills the cache, which costs a few small file writes).
  const cacheDir = join(dir, 'cache');
  {
    const t0 = performance.now();
    let first = 0;
    const results = await computeSpectra(model, { order: 'size', cacheDir, onResult: () => { first ||= performance.now() - t0; } });
    const total = (performance.now() - t0) / 1000;
    const fastest = Math.min(py.svdvals, py.gram);
    // Accuracy: max |σ − σ_scipy| / σ_max over every value of every matrix (model order = file order).
    let worst = 0;
    let at = 0;
    const byLayer = new Map(results.map((r) => [r.layer, r.singularValues]));
    for (const [name] of shapes) {
      const s = byLayer.get(name)!;
      for (let i = 0; i < s.length; i++) worst = Math.max(worst, Math.abs(s[i] - reference[at + i]) / reference[at]);
      at += s.length;
    }
    console.log(`rankscope cold: ${total.toFixed(2)} s for ${results.length} matrices, first layer after ${(first / 1000).toFixed(2)} s; `
      + `ratio to the faster LAPACK route ${(total / fastest).toFixed(2)}× (goal ≤ 1.5×: ${total / fastest <= 1.5 ? 'met' : 'NOT met'}); max error ${worst.toExponential(1)}·σ_max (bar 1e-5)  (load ${load()})`);
  }

  const t1 = performance.now();
  await computeSpectra(model, { cacheDir });
  console.log(`rankscope reopen (all cached): ${((performance.now() - t1) / 1000).toFixed(2)} s`);
  if (process.env.BENCH_LARGE !== '0') oneByOne();
  rmSync(dir, { recursive: true, force: true });
}

const LARGE: [number, number][] = [[768, 768], [768, 3072], [4096, 4096], [4096, 11008], [4096, 25088]];

/** One matrix per process on both sides: time, peak RSS, accuracy, and the growth with size. */
function oneByOne(): void {
  console.log(`\nlarge set, one matrix at a time (float32, std 0.02; LAPACK: float64 svdvals and Gram + eigvalsh)`);
  console.log(`BLAS: ${python(`
try:
    from threadpoolctl import threadpool_info
    print('; '.join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} threads={i.get('num_threads')}" for i in threadpool_info()))
except Exception as e:
    import numpy; print('threadpoolctl not available (' + type(e).__name__ + '); numpy', numpy.__version__)
`, []).trim()}`);
  const rows: string[] = [];
  let worstLarge = 0;
  for (const [r, c] of process.env.BENCH_LARGE === 'bert' ? LARGE.slice(0, 2) : LARGE) {
    const file = join(dir, `large_${r}x${c}.f32`);
    const ref = JSON.parse(python(`
import json, sys, time, numpy as np, scipy.linalg as sl
${PEAK_RSS_PY}
r, c, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
w = (np.random.default_rng(r * 7 + c).standard_normal((r, c), dtype=np.float32) * np.float32(0.02))
w.tofile(out)
a = w.astype(np.float64)
t = time.perf_counter(); g = a.T @ a if r >= c else a @ a.T; lam = np.linalg.eigvalsh(g); t_gram = time.perf_counter() - t
del g
t = time.perf_counter(); s = sl.svdvals(a, check_finite=False); t_svd = time.perf_counter() - t
s.astype('<f8').tofile(out + '.sv')
print(json.dumps({'gram': t_gram, 'svdvals': t_svd, 'rss': peak_rss()}))
`, [String(r), String(c), file]));
    const child = spawnSync(process.execPath, rerunArgs('--one', file, String(r), String(c)), { maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'inherit'] });
    if (child.status !== 0) throw new Error(`rankscope child failed on ${r}×${c}`);
    const ours = JSON.parse(child.stdout.toString()) as { seconds: number; rss: number; error: number };
    const fastest = Math.min(ref.gram, ref.svdvals);
    const n = Math.min(r, c), m = Math.max(r, c);
    const gflop = (n * n * m + (4 / 3) * n ** 3) / 1e9;
    if (n >= 4096) worstLarge = Math.max(worstLarge, ours.seconds / fastest);
    rows.push(`| ${r}×${c} | ${gflop.toFixed(0)} | ${ours.seconds.toFixed(2)} | ${(gflop / ours.seconds).toFixed(1)} | ${ref.gram.toFixed(2)} | ${ref.svdvals.toFixed(2)} | ${(ours.seconds / fastest).toFixed(2)}× | ${ours.error.toExponential(1)} | ${mib(ours.rss)} | ${mib(ref.rss)} | ${load()} |`);
    console.log(rows[rows.length - 1]);
  }
  console.log(`\n| matrix | GFlop (n²m + 4n³/3) | rankscope s (pool of 2, incl. start) | GFlop/s | numpy Gram+eigvalsh s | scipy svdvals s | ratio to faster | max err/σ_max | RSS rankscope | RSS LAPACK | load |`);
  console.log(`| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |`);
  for (const row of rows) console.log(row);
  if (worstLarge > 0) console.log(`large set: worst ratio to the faster LAPACK route ${worstLarge.toFixed(2)}× (goal ≤ 2×: ${worstLarge <= 2 ? 'met' : 'NOT met'})`);
}

/**
 * Child mode: the singular values of one matrix file through computeSpectra (the worker pool: a
 * large matrix gets both cores), timed, with the peak RSS of this process and its workers.
 */
async function one(file: string, rows: number, cols: number): Promise<void> {
  const bytes = readFileSync(file);
  const model = oneLayerModel(bytes, rows, cols);
  const t = performance.now();
  const [result] = await computeSpectra(model, {});
  const seconds = (performance.now() - t) / 1000;
  const s = result.singularValues;
  const refBytes = readFileSync(`${file}.sv`);
  const ref = new Float64Array(refBytes.buffer, refBytes.byteOffset, refBytes.byteLength / 8);
  let error = 0;
  for (let i = 0; i < s.length; i++) error = Math.max(error, Math.abs(s[i] - ref[i]) / ref[0]);
  process.stdout.write(JSON.stringify({ seconds, rss: peakRss(), error }));
}

function oneLayerModel(bytes: Buffer, rows: number, cols: number): Model {
  const tensor = new LazyTensor('w', 'float32', [rows, cols], () => new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  return {
    summary: {
      path: 'one layer', fileSize: bytes.byteLength, format: 'onnx', irVersion: 8, opsets: [], producer: { name: 'bench', version: '' },
      inputs: [], outputs: [], totalParams: rows * cols, factorizableParams: rows * cols, metadata: {},
    },
    layers: [{
      name: 'w', op: 'Gemm', weight: 'w', shape: [rows, cols], tensorShape: [rows, cols], layout: 'out_in', dtype: 'float32',
      params: rows * cols, biasParams: 0, bytes: bytes.byteLength, nodes: ['w'], factorizable: true,
    }],
    tensor: (name) => (name === 'w' ? tensor : undefined),
  };
}

const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;

/** An in-memory model over the weights file: out_in float32 layers, as FOUNDATION's Model contract reads them. */
function bertModel(bytes: Buffer): Model {
  const tensors = new Map<string, LazyTensor>();
  const layers: Layer[] = [];
  let offset = bytes.byteOffset;
  for (const [name, rows, cols] of shapes) {
    const start = offset;
    const length = rows * cols * 4;
    tensors.set(`${name}.weight`, new LazyTensor(`${name}.weight`, 'float32', [rows, cols], () => new Uint8Array(bytes.buffer, start, length)));
    offset += length;
    layers.push({
      name, op: 'Gemm', weight: `${name}.weight`, shape: [rows, cols], tensorShape: [rows, cols], layout: 'out_in', dtype: 'float32',
      params: rows * cols, biasParams: 0, bytes: length, nodes: [name], factorizable: true,
    });
  }
  return {
    summary: {
      path: 'bert-base (synthetic)', fileSize: bytes.byteLength, format: 'onnx', irVersion: 8, opsets: [], producer: { name: 'bench', version: '' },
      inputs: [], outputs: [], totalParams: bytes.byteLength / 4, factorizableParams: bytes.byteLength / 4, metadata: {},
    },
    layers,
    tensor: (name) => tensors.get(name),
  };
}

if (process.argv[2] === '--one') {
  one(process.argv[3], Number(process.argv[4]), Number(process.argv[5])).catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
