// ONNX reading, the layer inventory, writing and bad input, on models built by Python's onnx
// package and checked against numpy and onnxruntime-node.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import * as ort from 'onnxruntime-node';
import {
  encodeOnnx, makeTensorProto, ModelProtoSchema, openModelBytes, openOnnx, writeOnnxAtomic, type OnnxModel,
} from '../../../src/core/formats/onnx';
import { RankscopeError } from '../../../src/core/errors';
import { layerMatrices } from '../../../src/core/model/matrix';
import { openModel } from '../../../src/core/formats';
import { runPython } from '../../helpers/python';
import { buildZoo, runModel, tempDir } from './fixtures';

let dir: string;
let zooPath: string;
let expected: Record<string, number[][]>;
let zoo: OnnxModel;

before(async () => {
  dir = tempDir();
  ({ path: zooPath, expected } = buildZoo(dir));
  zoo = await openOnnx(zooPath);
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function rejects(p: Promise<unknown> | (() => unknown), code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(async () => (typeof p === 'function' ? p() : p), (e: unknown) => {
    assert.ok(e instanceof RankscopeError, `expected RankscopeError, got ${e}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    return true;
  });
}

describe('layer inventory', () => {
  test('finds every layer kind with module path, op, [out, in] shape, dtype, bias and users', () => {
    const table = zoo.layers.map((l) => [l.name, l.op, l.shape.join('x'), l.dtype, l.params, l.biasParams, l.nodes.length, l.factorizable]);
    assert.deepEqual(table, [
      ['enc.layers.0.fc1', 'MatMul', '32x16', 'float32', 512, 32, 1, true], // opaque onnx::MatMul_7 + bias Add
      ['left', 'MatMul', '8x16', 'float32', 128, 0, 1, true], // W·x
      ['head', 'Gemm', '10x32', 'float32', 320, 10, 1, true], // transB=1, alpha/beta, C
      ['proj_out', 'Gemm', '12x32', 'float32', 384, 0, 1, true], // transB=0, opaque name
      ['pw', 'Conv', '64x32', 'float32', 2048, 64, 1, true], // 1x1
      ['conv3', 'Conv', '16x72', 'float32', 1152, 16, 1, true], // 3x3
      ['conv1d', 'Conv', '8x20', 'float32', 160, 8, 1, true],
      ['conv3d', 'Conv', '4x54', 'float32', 216, 4, 1, true],
      ['grouped', 'Conv', '16x18', 'float32', 288, 16, 1, true],
      ['depthwise', 'Conv', '8x9', 'float32', 72, 8, 1, false],
      ['embed', 'Gather', '100x16', 'float32', 1600, 0, 1, true],
      ['tr', 'MatMul', '32x16', 'float32', 512, 0, 1, true], // through Transpose
      ['half', 'MatMul', '24x16', 'float16', 384, 0, 1, true], // through Cast
      ['ident', 'MatMul', '20x16', 'float32', 320, 0, 1, true], // through Identity
      ['const', 'MatMul', '8x16', 'float32', 128, 0, 1, true], // Constant node
      ['shared', 'MatMul', '16x16', 'float32', 256, 0, 2, true], // two users, listed once
      ['q', 'MatMul', '12x16', 'int8', 192, 0, 1, false], // DequantizeLinear
      ['tiny', 'MatMul', '2x2', 'float32', 4, 0, 1, false],
      ['typed', 'MatMul', '6x16', 'float32', 96, 0, 1, true], // float_data
      ['dbl', 'MatMul', '5x16', 'float64', 80, 0, 1, true], // double_data
      ['bf', 'MatMul', '7x16', 'bfloat16', 112, 0, 1, true],
      ['enc.fc2', 'MatMul', '32x16', 'float32', 16 * 4 + 4 * 32, 0, 2, false], // rankscope low-rank pair
    ]);
  });

  test('layouts, groups, kernels, via-nodes and reasons', () => {
    const byName = new Map(zoo.layers.map((l) => [l.name, l]));
    assert.equal(byName.get('enc.layers.0.fc1')!.layout, 'in_out');
    assert.equal(byName.get('enc.layers.0.fc1')!.weight, 'onnx::MatMul_7');
    assert.equal(byName.get('enc.layers.0.fc1')!.bias, 'enc.layers.0.fc1.bias');
    assert.equal(byName.get('head')!.layout, 'out_in');
    assert.equal(byName.get('tr')!.layout, 'out_in');
    assert.deepEqual(byName.get('tr')!.via, ['/tr/Transpose']);
    assert.deepEqual(byName.get('grouped')!.groups, 4);
    assert.deepEqual(byName.get('conv3d')!.kernel, [3, 3, 3]);
    assert.deepEqual(byName.get('shared')!.nodes, ['/shared/MatMul', '/shared/MatMul_1']);
    assert.match(byName.get('depthwise')!.reason!, /too small.*8 groups of 1×9/);
    assert.match(byName.get('tiny')!.reason!, /too small/);
    assert.match(byName.get('q')!.reason!, /integer dtype int8/);
    assert.equal(byName.get('half')!.bytes, 24 * 16 * 2);
    const c = byName.get('enc.fc2')!.compressed!;
    assert.deepEqual(c, { rank: 4, originalShape: [32, 16], energyKept: 0.9, method: 'svd', factors: ['enc.fc2.lowrank_A', 'enc.fc2.lowrank_B'], sourceFile: 'orig.onnx' });
  });

  test('model summary: IR, opsets, producer, inputs/outputs, totals, metadata', () => {
    const s = zoo.summary;
    assert.equal(s.irVersion, 7);
    assert.deepEqual(s.opsets, [{ domain: 'ai.onnx', version: 13 }, { domain: 'com.microsoft', version: 1 }]);
    assert.deepEqual(s.producer, { name: 'rankscope-tests', version: '1' });
    assert.deepEqual(s.inputs[0], { name: 'xa', dtype: 'float32', shape: [2, 16] });
    assert.equal(s.outputs.length, 22);
    assert.equal(s.fileSize, readFileSync(zooPath).length);
    assert.equal(s.metadata.author, 'tests');
    const factorizable = zoo.layers.filter((l) => l.factorizable).reduce((a, l) => a + l.params, 0);
    assert.equal(s.factorizableParams, factorizable);
    // Python's count of every initializer and Constant element.
    const total = Number(runPython(`import onnx,numpy as np,sys
m=onnx.load(sys.argv[1]); n=sum(int(np.prod(t.dims)) for t in m.graph.initializer)
n+=sum(int(np.prod(a.t.dims)) for x in m.graph.node if x.op_type=='Constant' for a in x.attribute if a.name=='value')
print(n)`, [zooPath]));
    assert.equal(s.totalParams, total);
  });

  test('layerMatrices gives numpy\'s canonical [out, in] matrices (per conv group, widened dtypes)', () => {
    for (const [name, mats] of Object.entries(expected)) {
      const layer = zoo.layers.find((l) => l.name === name)!;
      const got = layerMatrices(zoo, layer);
      assert.equal(got.length, mats.length, name);
      got.forEach((m, g) => {
        assert.equal(m.rows * m.cols, mats[g].length, name);
        const want = Float32Array.from(mats[g]);
        assert.deepEqual(m.data, want, `${name} group ${g}`);
      });
    }
    assert.equal(layerMatrices(zoo, zoo.layers.find((l) => l.name === 'grouped')!)[0].rows, 4);
  });

  test('raw_data tensors are zero-copy views of the file buffer', () => {
    const init = zoo.proto.graph!.initializer.find((t) => t.name === 'embed.weight')!;
    const a = zoo.bytesOf(init);
    const b = zoo.tensor('embed.weight')!.bytes();
    assert.equal(a.buffer, b.buffer);
    assert.ok(a.buffer.byteLength >= zoo.summary.fileSize, 'view into the whole-file buffer');
    assert.equal(zoo.tensor('embed.weight')!.hash(), zoo.tensor('embed.weight')!.hash());
    assert.notEqual(zoo.tensor('embed.weight')!.hash(), zoo.tensor('shared.weight')!.hash());
  });
});

describe('round trip', () => {
  test('decode + encode of an unmodified model is byte-identical, unknown fields included', async () => {
    const original = readFileSync(zooPath);
    // Unknown fields: field 99 on the model, field 77 inside the graph (appended to its message).
    const withUnknown = Buffer.concat([original, Buffer.from([0x98, 0x06, 0x2a])]);
    const m = openModelBytes(withUnknown, join(dir, 'unknown.onnx'));
    assert.ok(m.proto.$unknown?.length, 'unknown field kept on decode');
    assert.deepEqual(Buffer.from(encodeOnnx(m.proto)), withUnknown);
  });

  test('writeOnnxAtomic output runs in ONNX Runtime with identical outputs and keeps metadata/doc strings/opsets', async () => {
    const out = join(dir, 'zoo-rt.onnx');
    await writeOnnxAtomic(out, zoo.proto);
    const [a, b] = [await runModel(zooPath), await runModel(out)];
    for (const k of Object.keys(a)) assert.deepEqual(b[k].data, a[k].data, k);
    const info = JSON.parse(runPython(`import onnx,sys,json
m=onnx.load(sys.argv[1]); print(json.dumps([m.doc_string, m.graph.doc_string, [(o.domain,o.version) for o in m.opset_import], {p.key:p.value for p in m.metadata_props}['author']]))`, [out]));
    assert.deepEqual(info, ['zoo model', 'the layer zoo graph', [['', 13], ['com.microsoft', 1]], 'tests']);
    assert.deepEqual(readdirSync(dir).filter((f) => f.includes('.tmp')), [], 'no temp files left');
  });

  test('external data: read, kept on write, inlined on request; outputs identical', async () => {
    const ext = tempDir();
    try {
      runPython(`import onnx,sys
m=onnx.load(sys.argv[1]); onnx.save(m, sys.argv[2], save_as_external_data=True, all_tensors_to_one_file=True, location='weights.bin', size_threshold=256)`, [zooPath, join(ext, 'ext.onnx')]);
      const m = await openOnnx(join(ext, 'ext.onnx'));
      const init = m.proto.graph!.initializer.find((t) => t.name === 'embed.weight')!;
      assert.equal(init.dataLocation, 1);
      assert.deepEqual(Buffer.from(m.bytesOf(init)), Buffer.from(zoo.tensor('embed.weight')!.bytes()));
      assert.deepEqual(m.layers.map((l) => [l.name, l.shape]), zoo.layers.map((l) => [l.name, l.shape]));

      const outDir = tempDir();
      try {
        const kept = join(outDir, 'kept.onnx');
        await writeOnnxAtomic(kept, m.proto);
        assert.ok(existsSync(join(outDir, 'kept.onnx.data')), 'external data kept');
        const inline = join(outDir, 'inline.onnx');
        await writeOnnxAtomic(inline, m.proto, { externalData: false });
        const want = await runModel(zooPath);
        for (const p of [kept, inline]) {
          const got = await runModel(p);
          for (const k of Object.keys(want)) assert.deepEqual(got[k].data, want[k].data, `${p} ${k}`);
        }
        assert.ok((await openOnnx(kept)).proto.graph!.initializer.some((t) => t.dataLocation === 1));
        assert.ok((await openOnnx(inline)).proto.graph!.initializer.every((t) => t.dataLocation !== 1));
      } finally {
        rmSync(outDir, { recursive: true, force: true });
      }

      // A location outside the model's folder is refused (path traversal).
      const evil = fromBinary(ModelProtoSchema, readFileSync(join(ext, 'ext.onnx')));
      const loc = evil.graph!.initializer.find((t) => t.dataLocation === 1)!.externalData.find((e) => e.key === 'location')!;
      loc.value = '../../etc/passwd';
      writeFileSync(join(ext, 'evil.onnx'), toBinary(ModelProtoSchema, evil));
      await rejects(openOnnx(join(ext, 'evil.onnx')), 'EXTERNAL_DATA', /outside the model's folder/);

      // A link in the model's folder to data elsewhere is refused after resolving it (ONNX Runtime refuses it too).
      const outside = tempDir();
      try {
        const wbPath = join(ext, 'weights.bin');
        renameSync(wbPath, join(outside, 'weights.bin'));
        symlinkSync(join(outside, 'weights.bin'), wbPath);
        await rejects(openOnnx(join(ext, 'ext.onnx')), 'EXTERNAL_DATA', /ext\.onnx: tensor '.*' keeps its data in 'weights\.bin', which links to .*weights\.bin, outside the model's folder/);
        await assert.rejects(ort.InferenceSession.create(join(ext, 'ext.onnx'), { logSeverityLevel: 4 }), 'ONNX Runtime refuses the link too');
        // A link inside the folder is fine.
        mkdirSync(join(ext, 'sub'));
        rmSync(wbPath);
        renameSync(join(outside, 'weights.bin'), join(ext, 'sub', 'weights.bin'));
        symlinkSync(join(ext, 'sub', 'weights.bin'), wbPath);
        assert.equal((await openOnnx(join(ext, 'ext.onnx'))).layers.length, zoo.layers.length);
        rmSync(wbPath);
        renameSync(join(ext, 'sub', 'weights.bin'), wbPath);
        // Not a regular file (a FIFO would block the read forever).
        const fifo = join(ext, 'fifo.onnx');
        const viaFifo = fromBinary(ModelProtoSchema, readFileSync(join(ext, 'ext.onnx')));
        for (const t of viaFifo.graph!.initializer) for (const e of t.externalData) if (e.key === 'location') e.value = 'weights.fifo';
        writeFileSync(fifo, toBinary(ModelProtoSchema, viaFifo));
        if (spawnSync('mkfifo', [join(ext, 'weights.fifo')]).status === 0) await rejects(openOnnx(fifo), 'EXTERNAL_DATA', /weights\.fifo', which is not a regular file/);
      } finally {
        rmSync(outside, { recursive: true, force: true });
      }

      // Short and missing external data: typed errors naming the file.
      const wb = join(ext, 'weights.bin');
      copyFileSync(wb, wb + '.bak');
      truncateSync(wb, 100);
      await rejects(openOnnx(join(ext, 'ext.onnx')), 'EXTERNAL_DATA', /ext\.onnx.*weights\.bin.*too short/);
      rmSync(wb);
      await rejects(openOnnx(join(ext, 'ext.onnx')), 'EXTERNAL_DATA', /ext\.onnx.*weights\.bin.*does not exist/);
    } finally {
      rmSync(ext, { recursive: true, force: true });
    }
  });

  test('makeTensorProto stores float32/float16/bfloat16/float64 exactly like numpy', () => {
    const values = Float32Array.from([0, -0, 1, -2.5, 65504, 70000, 1e-8, 3.14159, -1e-5, 0.1, 2 ** -24, 1 / 3]);
    const hex = (dtype: 'float32' | 'float16' | 'bfloat16' | 'float64') =>
      Buffer.from(makeTensorProto('w', dtype, [values.length], values).rawData).toString('hex');
    const np = JSON.parse(runPython(`import numpy as np,json,sys
import torch
v=np.frombuffer(bytes.fromhex(sys.argv[1]),dtype=np.float32)
print(json.dumps([v.tobytes().hex(), v.astype(np.float16).tobytes().hex(), torch.from_numpy(v).to(torch.bfloat16).view(torch.int16).numpy().tobytes().hex(), v.astype(np.float64).tobytes().hex()]))`,
    [Buffer.from(values.buffer).toString('hex')]));
    assert.deepEqual([hex('float32'), hex('float16'), hex('bfloat16'), hex('float64')], np);
    const t = makeTensorProto('w', 'float16', [3, 4], values);
    assert.deepEqual(t.dims, [3n, 4n]);
    assert.equal(t.dataType, 10);
    assert.throws(() => makeTensorProto('w', 'float32', [5], values), RankscopeError);
  });
});

describe('bad input', () => {
  const cases: [string, (p: string) => void, string, RegExp][] = [
    ['empty file', (p) => writeFileSync(p, ''), 'NOT_ONNX', /empty/],
    ['text file', (p) => writeFileSync(p, 'hello, I am not a model\n'), 'NOT_ONNX', /not an ONNX model/],
    ['PNG', (p) => writeFileSync(p, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13])), 'NOT_ONNX', /not an ONNX model/],
    ['truncated', (p) => writeFileSync(p, readFileSync(zooPath).subarray(0, 5000)), 'CORRUPT', /truncated or corrupt/],
    ['corrupt', (p) => { const b = Buffer.from(readFileSync(zooPath)); b.fill(0xff, 40, 60); writeFileSync(p, b); }, 'CORRUPT', /truncated or corrupt/],
    ['protobuf without a graph', (p) => writeFileSync(p, Buffer.from([0x08, 0x07])), 'NOT_ONNX', /no graph/],
  ];
  for (const [what, make, code, pattern] of cases) {
    test(`${what}: ${code}, naming the file`, { timeout: 10_000 }, async () => {
      const p = join(dir, `bad-${what.replace(/\W/g, '_')}.onnx`);
      make(p);
      await rejects(openOnnx(p), code, new RegExp(`bad-.*\\.onnx.*|${pattern.source}`));
      await rejects(openOnnx(p), code, pattern);
      await rejects(openModel(p), code, pattern);
    });
  }

  test('structurally invalid models are refused at open with what is wrong and where (CORRUPT)', async () => {
    const bad = tempDir();
    try {
      runPython(readFileSync(join(__dirname, 'invalid_models.py'), 'utf8'), [bad]);
      const cases: [string, RegExp][] = [
        ['cycle', /the main graph has a cycle: '\/b\/Relu' \(Relu\) → '\/a\/Add' \(Add\) → '\/b\/Relu' \(Relu\)/],
        ['dangling', /node '\/fc\/MatMul' \(MatMul\) in the main graph reads 'ghost', which no node, graph input or initializer defines/],
        ['duplicate_initializer', /two initializers are named 'fc\.weight' in the main graph/],
        ['duplicate_output', /'h' is produced by two nodes in the main graph, '\/fc\/MatMul' \(MatMul\) and '\/relu' \(Relu\)/],
        ['negative_dims', /initializer 'w' in the main graph has a negative dimension \[16, -8\]/],
        ['raw_data_length', /initializer 'w' in the main graph \(float32 \[16, 8\]\) holds 100 bytes of raw_data, expected 512/],
        ['huge_no_data', /initializer 'w' in the main graph \(float32 \[16, 68719476736\]\) holds no data for its 1099511627776 elements/],
        ['subgraph_dangling', /node '\/then\/MatMul' \(MatMul\) in If '\/If' then_branch reads 'ghost'/],
        ['fill_negative', /ConstantOfShape '\/fc\/ConstantOfShape' in the main graph fills the shape \[-3, 8\]/],
      ];
      assert.deepEqual(cases.map((c) => `${c[0]}.onnx`).sort(), readdirSync(bad).filter((f) => f.endsWith('.onnx')).sort());
      for (const [name, pattern] of cases) {
        const path = join(bad, `${name}.onnx`);
        await rejects(openOnnx(path), 'CORRUPT', new RegExp(`^${name}\\.onnx is not a valid ONNX model: ${pattern.source}`));
        // The models really are broken: ONNX Runtime refuses to load or run them (it takes the
        // first of two same-named initializers silently, which is worse).
        if (name === 'duplicate_initializer') continue;
        await assert.rejects(async () => {
          const session = await ort.InferenceSession.create(path, { logSeverityLevel: 4 });
          try {
            await session.run({ x: new ort.Tensor('float32', new Float32Array(32), [2, 16]), ...(session.inputNames.includes('cond') && { cond: new ort.Tensor('bool', Uint8Array.from([1]), []) }) });
          } finally {
            await session.release();
          }
        }, `ONNX Runtime accepted ${name}`);
      }
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
  });

  test('valid but unusual structure is accepted: unsorted nodes, a sparse initializer, an omitted optional input', async () => {
    const odd = tempDir();
    try {
      runPython(`import sys, os, numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto
F = TensorProto.FLOAT
def save(name, nodes, inits, sparse=()):
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info('x', F, [2, 16])], [helper.make_tensor_value_info('y', F, None)], inits, sparse_initializer=list(sparse))
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]), os.path.join(sys.argv[1], name + '.onnx'))
w = numpy_helper.from_array(np.eye(16, 8, dtype=np.float32), 'fc.weight')
save('unsorted', [helper.make_node('Relu', ['h'], ['y'], name='/relu'), helper.make_node('MatMul', ['x', 'fc.weight'], ['h'], name='/fc/MatMul')], [w])
values = numpy_helper.from_array(np.ones(8, np.float32), 'sp.weight')
indices = numpy_helper.from_array(np.arange(8, dtype=np.int64) * 17 % 128, 'sp.indices')
save('sparse', [helper.make_node('MatMul', ['x', 'sp.weight'], ['y'], name='/sp/MatMul')], [], [helper.make_sparse_tensor(values, indices, [16, 8])])
save('optional', [helper.make_node('Clip', ['x', '', 'hi'], ['y'], name='/clip')], [numpy_helper.from_array(np.array(0.5, np.float32), 'hi')])`, [odd]);
      for (const name of ['unsorted', 'sparse', 'optional']) {
        const m = await openOnnx(join(odd, `${name}.onnx`));
        assert.ok(m.summary.outputs.length === 1, name);
        const out = await runModel(join(odd, `${name}.onnx`));
        assert.ok(out.y.data.length > 0, `${name} runs in ONNX Runtime`);
      }
      assert.deepEqual((await openOnnx(join(odd, 'unsorted.onnx'))).layers.map((l) => l.name), ['fc']);
    } finally {
      rmSync(odd, { recursive: true, force: true });
    }
  });

  test('an aborted signal cancels the open', async () => {
    const controller = new AbortController();
    controller.abort();
    await rejects(openOnnx(zooPath, { signal: controller.signal }), 'CANCELLED', /Cancelled/);
  });

  test('missing file and folder', async () => {
    await rejects(openOnnx(join(dir, 'nope.onnx')), 'NOT_FOUND', /nope\.onnx/);
    await rejects(openModel(join(dir, 'nope.onnx')), 'NOT_FOUND', /nope\.onnx/);
    await rejects(openOnnx(dir), 'BAD_ARGUMENT', /folder/);
  });

  test('a corrupt tensor (raw_data of the wrong length) is refused at open, named', () => {
    const p = fromBinary(ModelProtoSchema, readFileSync(zooPath));
    const t = p.graph!.initializer.find((x) => x.name === 'embed.weight')!;
    t.rawData = t.rawData.subarray(0, 10);
    assert.throws(() => openModelBytes(toBinary(ModelProtoSchema, p), join(dir, 'bad-tensor.onnx')),
      (e: unknown) => e instanceof RankscopeError && e.code === 'CORRUPT' && /bad-tensor\.onnx.*initializer 'embed\.weight'.*10 bytes of raw_data, expected 6400/.test(e.message));
  });

  test('openModel hands zips and safetensors files to their own readers (test/unit/formats/pytorch.test.ts)', async () => {
    const p = join(dir, 'model.pt');
    writeFileSync(p, Buffer.from('PK\u0003\u0004rest of a zip'));
    await rejects(openModel(p), 'CORRUPT', /model\.pt is not a readable zip archive/);
    const header = Buffer.from('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    writeFileSync(join(dir, 'model.safetensors'), Buffer.concat([len, header, Buffer.alloc(4)]));
    const m = await openModel(join(dir, 'model.safetensors'));
    assert.equal(m.summary.format, 'safetensors');
    assert.deepEqual([...m.tensor('w')!.toFloat32()], [0]);
  });
});
