// `npm run bench:compress`: compress all 72 matrices of a BERT-base-shaped ONNX model
// (12 × [4 of 768×768, 768×3072, 3072×768], 85 M parameters, 340 MB) at energy 0.9 and write the
// result: open → one worker pass per layer (Gram → tridiagonal → σ → policy's k → top-k vectors)
// → plan → graph rewrite → atomic write (planAndFactorize, what `rankscope compress` runs).
// Prints wall time per stage, peak RSS, and two references measured in the same run: the I/O floor
// (open + write the model unchanged) and LAPACK (scipy gesdd) factorizing the same 72 matrices.
// Goal: ≤ 15 s. Figures are noisy on a shared machine: the load average is printed with them.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { applyPlan, planAndFactorize } from '../src/core/compress';
import { openOnnx, writeOnnxAtomic } from '../src/core/formats/onnx';
import { testPython } from '../test/helpers/python';

const DATA = join(__dirname, '.data');
const MODEL = join(DATA, 'bert-base-shaped.onnx');
const OUT = join(DATA, 'bert-base-shaped.energy0.9.onnx');
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;

// Weights with a decaying spectrum like trained layers (σ_j ∝ j^-0.7 through random bases);
// Gaussian weights have flat spectra where energy 0.9 would save nothing.
const BUILD = `
import sys, numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto
out = sys.argv[1]
rng = np.random.default_rng(0)
def weight(rows, cols):
    r = min(rows, cols)
    d = (np.arange(1, r + 1) ** -0.7).astype(np.float32)
    x = rng.standard_normal((rows, r), dtype=np.float32)
    y = rng.standard_normal((r, cols), dtype=np.float32)
    return ((x * d) @ y * np.float32(0.02 / np.sqrt(r))).astype(np.float32)
nodes, inits, h = [], [], 'x'
for b in range(12):
    for name, rows, cols in [('attention.q', 768, 768), ('attention.k', 768, 768), ('attention.v', 768, 768), ('attention.o', 768, 768), ('intermediate.dense', 768, 3072), ('output.dense', 3072, 768)]:
        w = f'encoder.layer.{b}.{name}.weight'
        inits.append(numpy_helper.from_array(weight(rows, cols), w))
        o = f'/encoder/layer.{b}/{name}/MatMul_output_0'
        nodes.append(helper.make_node('MatMul', [h, w], [o], name=f'/encoder/layer.{b}/{name}/MatMul'))
        h = o
        if name == 'intermediate.dense':
            nodes.append(helper.make_node('Relu', [h], [h + '_relu'])); h = h + '_relu'
graph = helper.make_graph(nodes, 'bert-shaped', [helper.make_tensor_value_info('x', TensorProto.FLOAT, ['batch', 8, 768])],
                          [helper.make_tensor_value_info(h, TensorProto.FLOAT, ['batch', 8, 768])], inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)], producer_name='rankscope-bench')
model.ir_version = 8
onnx.save(model, out)
`;

const LAPACK = `
import sys, time, json, numpy as np, onnx, scipy.linalg as sl
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
mats = [numpy_helper.to_array(t) for t in m.graph.initializer]
t = time.perf_counter()
for w in mats: sl.svd(w, full_matrices=False, lapack_driver='gesdd', check_finite=False)
print(json.dumps({'seconds': time.perf_counter() - t, 'matrices': len(mats)}))
`;

async function main(): Promise<void> {
  mkdirSync(DATA, { recursive: true });
  if (!existsSync(MODEL)) {
    const t = performance.now();
    const r = spawnSync(testPython(), ['-c', BUILD, MODEL], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('building the model failed');
    console.log(`built ${MODEL} in ${((performance.now() - t) / 1000).toFixed(1)} s (cached in bench/.data)`);
  }
  console.log(`bench:compress — ${MODEL} (${mib(statSync(MODEL).size)}); ${availableParallelism()} cores; load ${load()}`);

  const t0 = performance.now();
  const model = await openOnnx(MODEL);
  const t1 = performance.now();
  const { plan, factors } = await planAndFactorize(model, { energy: 0.9 });
  const t2 = performance.now();
  const proto = applyPlan(model, plan, { factors });
  const t4 = performance.now();
  await writeOnnxAtomic(OUT, proto, { sourceDir: model.dir });
  const t5 = performance.now();
  const total = (t5 - t0) / 1000;
  const s = (a: number, b: number) => `${((b - a) / 1000).toFixed(2)} s`;
  const ks = plan.layers.filter((l) => !l.skipped).map((l) => l.k);
  console.log(`${plan.totals.compressed}/${plan.layers.length} layers factorized, ranks ${Math.min(...ks)}–${Math.max(...ks)}; ` +
    `parameters ${(plan.totals.paramsBefore / 1e6).toFixed(1)} M → ${(plan.totals.paramsAfter / 1e6).toFixed(1)} M; file ${mib(statSync(MODEL).size)} → ${mib(statSync(OUT).size)}`);
  console.log(`stages: open ${s(t0, t1)}, spectra + plan + factorize (one pass, worker pool) ${s(t1, t2)}, rewrite ${s(t2, t4)}, write ${s(t4, t5)}`);
  console.log(`compress wall time: ${total.toFixed(2)} s (goal ≤ 15 s: ${total <= 15 ? 'met' : 'NOT met'}); peak RSS ${mib(process.resourceUsage().maxRSS * 1024)}  (load ${load()})`);

  // Reference 1: the I/O floor, open + write of the same model unchanged.
  const r0 = performance.now();
  const again = await openOnnx(MODEL);
  const copy = join(DATA, 'bert-base-shaped.copy.onnx');
  await writeOnnxAtomic(copy, again.proto, { sourceDir: again.dir });
  const io = (performance.now() - r0) / 1000;
  rmSync(copy, { force: true });
  // Reference 2: LAPACK factorizing the same matrices (scipy gesdd, thin SVD), without I/O.
  const r = spawnSync(testPython(), ['-c', LAPACK, MODEL], { maxBuffer: 1 << 26 });
  const lapack = r.status === 0 ? JSON.parse(r.stdout.toString()) as { seconds: number; matrices: number } : undefined;
  console.log(`reference: open+write unchanged ${io.toFixed(2)} s → compress is ${(total / io).toFixed(1)}× the I/O floor`);
  if (lapack) console.log(`reference: scipy gesdd thin SVD of the ${lapack.matrices} matrices ${lapack.seconds.toFixed(2)} s → our spectra+factorization ${((t2 - t1) / 1000 / lapack.seconds).toFixed(2)}× LAPACK  (load ${load()})`);
  else console.log(`reference: LAPACK run failed: ${r.stderr?.toString().slice(0, 200)}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
