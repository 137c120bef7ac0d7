// `npm run bench:spectra`: all singular values of BERT-base-shaped float32 matrices
// (12 × [4 of 768×768, 768×3072, 3072×768] = 72 matrices, 85 M parameters) through
// computeSpectra (worker-thread pool, WASM kernels), against LAPACK on the same matrices in the
// same run: scipy svdvals (gesdd) and the Gram route (WᵀW in float64, then eigvalsh).
// Prints wall times, time to the first layer, the ratio to the faster LAPACK route, the
// accuracy against svdvals, and a cache-hit reopen. Figures are noisy on a shared machine: the
// load average is printed with them.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { computeSpectra } from '../src/core/linalg/spectra';
import { LazyTensor } from '../src/core/model/tensor';
import type { Layer, Model } from '../src/core/model/types';
import { testPython } from '../test/helpers/python';

const BLOCKS = Number(process.env.BENCH_BLOCKS ?? 12);
const shapes: [string, number, number][] = [];
for (let b = 0; b < BLOCKS; b++) {
  for (const p of ['q', 'k', 'v', 'o']) shapes.push([`encoder.layer.${b}.attention.${p}`, 768, 768]);
  shapes.push([`encoder.layer.${b}.intermediate.dense`, 3072, 768]);
  shapes.push([`encoder.layer.${b}.output.dense`, 768, 3072]);
}

const dir = mkdtempSync(join(tmpdir(), 'rankscope-bench-spectra-'));
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

function python(code: string, args: string[]): string {
  const r = spawnSync(testPython(), ['-c', code, ...args], { maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'inherit'] });
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
      + `ratio to the faster LAPACK route ${(total / fastest).toFixed(2)}× (goal ≤ 3×, ≤ 10 s); max error ${worst.toExponential(1)}·σ_max (bar 1e-5)  (load ${load()})`);
  }

  const t1 = performance.now();
  await computeSpectra(model, { cacheDir });
  console.log(`rankscope reopen (all cached): ${((performance.now() - t1) / 1000).toFixed(2)} s`);
  rmSync(dir, { recursive: true, force: true });
}

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

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
