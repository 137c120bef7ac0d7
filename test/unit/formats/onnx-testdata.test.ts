// The ONNX project's own test models (../shared/onnx-testdata): every model with stored inputs
// runs in onnxruntime-node as read and after a round trip through our writer, and must give the
// expected outputs (decoded from TensorProto .pb files by our reader). `light/` models check the
// inventory of weights held in ConstantOfShape nodes against Python's onnx.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import * as ort from 'onnxruntime-node';
import { dimsOf, dtypeOf, encodeOnnx, openOnnx, tensorBytes, TensorProtoSchema, type TensorProto } from '../../../src/core/formats/onnx';
import { runPython } from '../../helpers/python';

const ROOT = process.env.RANKSCOPE_ONNX_TESTDATA ?? join(__dirname, '../../../../shared/onnx-testdata');
const SUITES = ['simple', 'pytorch-converted', 'pytorch-operator'];
// The ONNX backend tests' tolerances.
const RTOL = 1e-3;
const ATOL = 1e-7;

function toOrt(t: TensorProto, dir: string): ort.Tensor {
  const dtype = dtypeOf(t.dataType);
  const dims = dimsOf(t);
  const raw = tensorBytes(t, dir);
  const copy = new Uint8Array(raw); // aligned, owned copy (raw may be a Buffer view)
  switch (dtype) {
    case 'float32': return new ort.Tensor('float32', new Float32Array(copy.buffer), dims);
    case 'float64': return new ort.Tensor('float64', new Float64Array(copy.buffer), dims);
    case 'float16': return new ort.Tensor('float16', new Uint16Array(copy.buffer), dims);
    case 'int64': return new ort.Tensor('int64', new BigInt64Array(copy.buffer), dims);
    case 'int32': return new ort.Tensor('int32', new Int32Array(copy.buffer), dims);
    case 'int16': return new ort.Tensor('int16', new Int16Array(copy.buffer), dims);
    case 'int8': return new ort.Tensor('int8', new Int8Array(copy.buffer), dims);
    case 'uint8': return new ort.Tensor('uint8', copy, dims);
    case 'bool': return new ort.Tensor('bool', copy, dims);
    case 'string': return new ort.Tensor('string', t.stringData.map((s) => new TextDecoder().decode(s)), dims);
    default: throw new Error(`input dtype ${dtype} not supported by onnxruntime-node`);
  }
}

function close(got: ort.Tensor, want: ort.Tensor): string | undefined {
  if (got.dims.join(',') !== want.dims.join(',')) return `shape [${got.dims}] vs expected [${want.dims}]`;
  const g = got.data as ArrayLike<number | bigint | string>;
  const w = want.data as ArrayLike<number | bigint | string>;
  for (let i = 0; i < w.length; i++) {
    const a = g[i];
    const b = w[i];
    if (typeof b === 'number' && typeof a === 'number') {
      if (Number.isNaN(b) && Number.isNaN(a)) continue;
      if (!(Math.abs(a - b) <= ATOL + RTOL * Math.abs(b)) && a !== b) return `element ${i}: ${a} vs expected ${b}`;
    } else if (a !== b) return `element ${i}: ${a} vs expected ${b}`;
  }
  return undefined;
}

interface Case { name: string; dir: string; sets: string[] }

function cases(): Case[] {
  return SUITES.flatMap((suite) => {
    const base = join(ROOT, suite);
    if (!existsSync(base)) return [];
    return readdirSync(base).sort().map((name) => {
      const dir = join(base, name);
      const sets = existsSync(join(dir, 'model.onnx')) ? readdirSync(dir).filter((d) => d.startsWith('test_data_set_')).sort() : [];
      return { name: `${suite}/${name}`, dir, sets };
    }).filter((c) => c.sets.length > 0);
  });
}

function readPbs(dir: string, prefix: string): TensorProto[] {
  return readdirSync(dir).filter((f) => f.startsWith(prefix) && f.endsWith('.pb'))
    .sort((a, b) => Number(a.match(/\d+/)![0]) - Number(b.match(/\d+/)![0]))
    .map((f) => fromBinary(TensorProtoSchema, readFileSync(join(dir, f))));
}

async function runSet(session: ort.InferenceSession, setDir: string): Promise<string | undefined> {
  const inputs = readPbs(setDir, 'input_');
  const outputs = readPbs(setDir, 'output_');
  const feeds: Record<string, ort.Tensor> = {};
  inputs.forEach((t, i) => {
    const name = session.inputNames.includes(t.name) ? t.name : session.inputNames[i];
    feeds[name] = toOrt(t, setDir);
  });
  const result = await session.run(feeds);
  for (let i = 0; i < outputs.length; i++) {
    const name = session.outputNames.includes(outputs[i].name) ? outputs[i].name : session.outputNames[i];
    const problem = close(result[name], toOrt(outputs[i], setDir));
    if (problem) return `${name}: ${problem}`;
  }
  return undefined;
}

test('ONNX test-data models give the expected outputs as read and after our round trip', { skip: !existsSync(ROOT) && `no ${ROOT}`, timeout: 240_000 }, async (t) => {
  const all = cases();
  const skipped: string[] = [];
  const mismatched: string[] = [];
  const notIdentical: string[] = [];
  let identical = 0;
  let ran = 0;
  let matched = 0;
  const options: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3 };
  for (const c of all) {
    const model = await openOnnx(join(c.dir, 'model.onnx'));
    const roundTrip = encodeOnnx(model.proto);
    // Every model, runnable or not, must re-encode to the very same bytes.
    if (Buffer.compare(Buffer.from(roundTrip), readFileSync(join(c.dir, 'model.onnx'))) === 0) identical++;
    else notIdentical.push(c.name);
    let asRead: ort.InferenceSession;
    try {
      asRead = await ort.InferenceSession.create(join(c.dir, 'model.onnx'), options);
    } catch (e) {
      skipped.push(`${c.name}: onnxruntime cannot load it (${(e as Error).message.split('\n')[0].slice(0, 100)})`);
      continue;
    }
    const written = await ort.InferenceSession.create(roundTrip, options);
    try {
      let problem: string | undefined;
      let feedError: string | undefined;
      for (const set of c.sets) {
        const setDir = join(c.dir, set);
        let asReadProblem: string | undefined;
        try {
          asReadProblem = await runSet(asRead, setDir);
        } catch (e) {
          feedError = (e as Error).message.split('\n')[0].slice(0, 100);
          break;
        }
        const afterWrite = await runSet(written, setDir);
        problem = asReadProblem ?? (afterWrite ? `after round trip: ${afterWrite}` : undefined);
        if (problem) break;
      }
      if (feedError) {
        skipped.push(`${c.name}: onnxruntime cannot run its stored inputs (${feedError})`);
        continue;
      }
      ran++;
      if (problem) mismatched.push(`${c.name}: ${problem}`);
      else matched++;
    } finally {
      await asRead.release();
      await written.release();
    }
  }
  const summary = `ONNX test data: ${all.length} models with stored inputs; ran ${ran}, matched ${matched}, skipped ${skipped.length}; ` +
    `re-encoded byte-identical ${identical}/${all.length}`;
  t.diagnostic(summary);
  for (const s of skipped) t.diagnostic(`skipped ${s}`);
  console.log(summary);
  assert.deepEqual(mismatched, [], 'every runnable model matches');
  assert.deepEqual(notIdentical, [], 'every model re-encodes byte-identically');
  assert.ok(ran >= 100, `expected most of the suite to run, ran ${ran}`);
});

test('light/ models: weights held in ConstantOfShape nodes are listed like Python onnx sees them', { skip: !existsSync(join(ROOT, 'light')) && 'no light/' }, async () => {
  const files = readdirSync(join(ROOT, 'light')).filter((f) => f.endsWith('.onnx')).sort();
  assert.ok(files.length >= 8);
  // Python: every 2-D+ ConstantOfShape output used as the weight of Conv/Gemm/MatMul, with its shape.
  const want: Record<string, [string, number[]][]> = JSON.parse(runPython(`import onnx,sys,json
from onnx import numpy_helper as nh
res={}
for p in sys.argv[1:]:
    m=onnx.load(p); g=m.graph; init={t.name:nh.to_array(t) for t in g.initializer}
    shapes={n.output[0]:[int(d) for d in init[n.input[0]]] for n in g.node if n.op_type=='ConstantOfShape' and n.input[0] in init}
    # a weight may reach its Gemm through a Reshape (inception's classifier [1,1,1000,1024] -> [1000,1024])
    reshaped={n.output[0]:n.input[0] for n in g.node if n.op_type=='Reshape' and n.input[0] in shapes}
    seen=[]
    for n in g.node:
        w=reshaped.get(n.input[1], n.input[1]) if n.op_type in ('Gemm','MatMul') and len(n.input)>1 else n.input[1] if len(n.input)>1 else None
        if n.op_type in ('Conv','Gemm','MatMul') and w in shapes and w not in [s[0] for s in seen]:
            seen.append((w, shapes[w]))
    res[p.split('/')[-1]]=seen
print(json.dumps(res))`, files.map((f) => join(ROOT, 'light', f))));
  for (const f of files) {
    const m = await openOnnx(join(ROOT, 'light', f));
    assert.equal(Buffer.compare(Buffer.from(encodeOnnx(m.proto)), readFileSync(join(ROOT, 'light', f))), 0, `${f} re-encodes identically`);
    const got = m.layers.filter((l) => l.op !== 'Gather').map((l) => [l.weight, l.tensorShape]);
    assert.deepEqual(got, want[f], f);
    assert.ok(m.layers.length > 0, f);
    for (const l of m.layers.filter((x) => x.params < 1e6)) {
      // Fill values come through: the matrix is the constant the node holds.
      const v = m.tensor(l.weight)!.toFloat32();
      assert.equal(v.length, l.params);
      assert.ok(v.every((x) => x === v[0]), `${f} ${l.name} is a constant fill`);
    }
  }
});
