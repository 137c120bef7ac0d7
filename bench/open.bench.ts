// `npm run bench:open`: open + layer inventory of a ~500 MB Transformer-shaped ONNX model.
// Each run is a fresh child process, so its peak RSS is the cost of one open. Where Python's
// `onnx` package exists, onnx.load of the same file is timed in the same run as the reference.
// Goal (issue 2): median < 1.5 s and peak RSS < 1.3 × file size on the 2-core CI machine.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { BENCH_DATA, rerunArgs } from './paths';
import {
  GraphProtoSchema, makeTensorProto, ModelProtoSchema, NodeProtoSchema, OperatorSetIdProtoSchema, openModelBytes, openOnnx,
  TensorProto_DataType, TypeProtoSchema, ValueInfoProtoSchema, writeOnnxAtomic,
  type NodeProto, type TensorProto,
} from '../src/core/formats/onnx';

const DATA = BENCH_DATA;
const MODEL = join(DATA, 'transformer-500mb.onnx');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const D = 1024;
const FFN = 4096;
const LAYERS = 8;
const VOCAB = 30000;

/** A PyTorch-export-shaped encoder: opaque `onnx::MatMul_*` weights, module-path node names. */
async function generate(): Promise<void> {
  mkdirSync(DATA, { recursive: true });
  let seed = 12345;
  const random = (n: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      seed = (Math.imul(seed, 1664525) + 1013904223) | 0;
      a[i] = (seed / 2 ** 31) * 0.02;
    }
    return a;
  };
  const inits: TensorProto[] = [];
  const nodes: NodeProto[] = [];
  let id = 100;
  const node = (opType: string, input: string[], name: string) => {
    const output = `${name}_output_0`;
    nodes.push(create(NodeProtoSchema, { opType, input, output: [output], name }));
    return output;
  };
  const linear = (x: string, path: string, inDim: number, outDim: number) => {
    const w = `onnx::MatMul_${id++}`;
    inits.push(makeTensorProto(w, 'float32', [inDim, outDim], random(inDim * outDim)));
    inits.push(makeTensorProto(`${path.replace(/\//g, '.').slice(1)}.bias`, 'float32', [outDim], random(outDim)));
    const y = node('MatMul', [x, w], `${path}/MatMul`);
    return node('Add', [y, `${path.replace(/\//g, '.').slice(1)}.bias`], `${path}/Add`);
  };
  inits.push(makeTensorProto('embed.weight', 'float32', [VOCAB, D], random(VOCAB * D)));
  let x = node('Gather', ['embed.weight', 'ids'], '/embed/Gather');
  for (let l = 0; l < LAYERS; l++) {
    const p = `/encoder/layers.${l}`;
    const q = linear(x, `${p}/self_attn/q_proj`, D, D);
    const k = linear(x, `${p}/self_attn/k_proj`, D, D);
    const v = linear(x, `${p}/self_attn/v_proj`, D, D);
    const qk = node('Add', [q, k], `${p}/self_attn/Add`);
    const att = node('Add', [qk, v], `${p}/self_attn/Add_1`);
    const o = linear(att, `${p}/self_attn/out_proj`, D, D);
    const h = linear(node('Relu', [o], `${p}/Relu`), `${p}/fc1`, D, FFN);
    x = linear(node('Relu', [h], `${p}/Relu_1`), `${p}/fc2`, FFN, D);
  }
  const tensorType = (elemType: number) => create(TypeProtoSchema, { value: { case: 'tensorType', value: { elemType } } });
  const model = create(ModelProtoSchema, {
    irVersion: 8n,
    producerName: 'rankscope-bench',
    opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 17n })],
    graph: create(GraphProtoSchema, {
      name: 'bench-transformer',
      node: nodes,
      initializer: inits,
      input: [create(ValueInfoProtoSchema, { name: 'ids', type: tensorType(TensorProto_DataType.INT64) })],
      output: [create(ValueInfoProtoSchema, { name: x, type: tensorType(TensorProto_DataType.FLOAT) })],
    }),
  });
  await writeOnnxAtomic(MODEL, model, { externalData: false });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Child mode: open once, print {ms, rss, layers}. */
async function child(path: string): Promise<void> {
  const t0 = performance.now();
  const m = await openOnnx(path);
  const ms = performance.now() - t0;
  // The part that is ours rather than the disk's: decode + inventory of the bytes already read.
  const t1 = performance.now();
  const again = openModelBytes(new Uint8Array(m.proto.graph!.initializer[0].rawData.buffer), path);
  const decodeMs = performance.now() - t1;
  if (again.layers.length !== m.layers.length) throw new Error('decode mismatch');
  // VmHWM, not getrusage's maxRSS: Linux keeps ru_maxrss across fork+exec, so a child would
  // report its parent's peak.
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  const rss = hwm ? Number(hwm[1]) * 1024 : process.resourceUsage().maxRSS * 1024;
  process.stdout.write(JSON.stringify({ ms, decodeMs, rss, layers: m.layers.length }) + '\n');
}

function pythonOnnxLoad(path: string): number | undefined {
  const py = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const r = spawnSync(py, ['-c', `import time,sys
import onnx
t=time.perf_counter(); m=onnx.load(sys.argv[1]); print((time.perf_counter()-t)*1000)`, path], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.trim()) : undefined;
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return child(process.argv[3]);
  if (!existsSync(MODEL)) {
    const t0 = performance.now();
    console.log(`generating ${MODEL} (once) …`);
    await generate();
    console.log(`  done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const size = statSync(MODEL).size;
  console.log(`bench:open  ${MODEL}`);
  console.log(`  file ${(size / 2 ** 20).toFixed(1)} MiB; ${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ${RUNS} runs`);
  const ours: { ms: number; decodeMs: number; rss: number; layers: number }[] = [];
  const ref: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = spawnSync(process.execPath, rerunArgs('--child', MODEL), { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    ours.push(JSON.parse(r.stdout.trim().split('\n').at(-1)!));
    const p = pythonOnnxLoad(MODEL);
    if (p !== undefined) ref.push(p);
  }
  const ms = median(ours.map((o) => o.ms));
  const rss = Math.max(...ours.map((o) => o.rss));
  console.log(`  rankscope open + inventory: median ${ms.toFixed(0)} ms (runs: ${ours.map((o) => o.ms.toFixed(0)).join(', ')}), ${ours[0].layers} layers`);
  console.log(`    of which decode + inventory (file already in memory): median ${median(ours.map((o) => o.decodeMs)).toFixed(0)} ms; the rest is reading the file`);
  console.log(`  peak RSS ${(rss / 2 ** 20).toFixed(0)} MiB = ${(rss / size).toFixed(2)} × file size`);
  if (ref.length) {
    const p = median(ref);
    console.log(`  python onnx.load: median ${p.toFixed(0)} ms (runs: ${ref.map((x) => x.toFixed(0)).join(', ')})`);
    console.log(`  ratio onnx.load / rankscope = ${(p / ms).toFixed(2)}× (higher is better for us)`);
  } else {
    console.log('  python onnx not available: no reference timing');
  }
  const ok = ms < 1500 && rss < 1.3 * size;
  console.log(`  goal (< 1500 ms, RSS < 1.3 × file): ${ok ? 'met' : 'NOT met'}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
