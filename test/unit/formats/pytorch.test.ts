// PyTorch checkpoints and safetensors files, saved by Debian's torch (test/unit/formats/
// torch_checkpoints.py): the inventory against torch.load (keys, shapes, dtypes, bytes bit-equal
// by SHA-256), the layers found by parameter names, spectra against numpy's SVD, and checkpoints
// whose pickle would run code (malicious_pickles.py) refused with the global named, nothing run.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RankscopeError } from '../../../src/core/errors';
import { StateDictModel } from '../../../src/core/formats/stateDict';
import { computeSpectra } from '../../../src/core/linalg';
import { openModel } from '../../../src/core/formats';
import { pythonHas, runPython } from '../../helpers/python';
import { tempDir } from './fixtures';

const hasTorch = pythonHas('torch', 'numpy');
const skip = !hasTorch && 'needs torch and numpy under the test Python';

interface Expected {
  keys: Record<string, { dtype: string; shape: number[]; sha256: string }>;
  svd: Record<string, number[][]>;
}
let dir: string;
let expected: Record<string, Expected>;

before(() => {
  if (!hasTorch) return;
  dir = tempDir('rankscope-pt-');
  runPython(readFileSync(join(__dirname, 'torch_checkpoints.py'), 'utf8'), [dir, join(__dirname, '..', '..', '..', 'src', 'worker', 'python'), __dirname]);
  expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));
});
after(() => dir && rmSync(dir, { recursive: true, force: true }));

async function open(name: string): Promise<StateDictModel> {
  const m = await openModel(join(dir, name));
  assert.ok(m instanceof StateDictModel);
  return m;
}

async function rejects(p: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof RankscopeError, `expected RankscopeError, got ${e}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    return true;
  });
}

const FILES = ['transformer.pt', 'skeleton.pth', 'dataparallel.pt', 'fp16.bin', 'nested.pt', 'encoder.safetensors', 'deflated.pt'];

describe('state-dict inventory against torch.load', { skip }, () => {
  for (const file of FILES) {
    test(`${file}: every tensor's key, dtype, shape and bytes`, async () => {
      const m = await open(file);
      const want = expected[file].keys;
      assert.deepEqual(m.tensorNames().sort(), Object.keys(want).sort());
      for (const [key, w] of Object.entries(want)) {
        const t = m.tensor(key)!;
        assert.equal(t.dtype, w.dtype, key);
        assert.deepEqual([...t.shape], w.shape, key);
        assert.equal(createHash('sha256').update(t.bytes()).digest('hex'), w.sha256, `${key}: bytes differ from torch.load's`);
      }
      assert.equal(m.summary.format, file.endsWith('.safetensors') ? 'safetensors' : 'pytorch');
    });
  }

  test('a Transformer encoder: module paths, nn.Linear [out, in], in_proj_weight named like the ONNX export, embeddings', async () => {
    const m = await open('transformer.pt');
    assert.deepEqual(m.layers.map((l) => `${l.name} ${l.op} ${l.shape.join('x')} ${l.bias ?? '-'}`), [
      'embed Gather 50x32 -',
      'encoder.layers.0.self_attn.in_proj Gemm 96x32 encoder.layers.0.self_attn.in_proj_bias',
      'encoder.layers.0.self_attn.out_proj Gemm 32x32 encoder.layers.0.self_attn.out_proj.bias',
      'encoder.layers.0.linear1 Gemm 64x32 encoder.layers.0.linear1.bias',
      'encoder.layers.0.linear2 Gemm 32x64 encoder.layers.0.linear2.bias',
      'encoder.layers.1.self_attn.in_proj Gemm 96x32 encoder.layers.1.self_attn.in_proj_bias',
      'encoder.layers.1.self_attn.out_proj Gemm 32x32 encoder.layers.1.self_attn.out_proj.bias',
      'encoder.layers.1.linear1 Gemm 64x32 encoder.layers.1.linear1.bias',
      'encoder.layers.1.linear2 Gemm 32x64 encoder.layers.1.linear2.bias',
      'head Gemm 10x32 head.bias',
    ]);
    // Norm weights are 1-D: not layers, but parameters.
    const all = Object.values(expected['transformer.pt'].keys).reduce((a, k) => a + k.shape.reduce((x, y) => x * y, 1), 0);
    assert.equal(m.summary.totalParams, all);
  });

  test('convs: [out, in/groups·k] with groups from the sidecar (tconv) and from the name (dwconv); training-checkpoint wrapper', async () => {
    const m = await open('skeleton.pth');
    assert.equal(m.summary.metadata['pytorch.stateDict'], 'state_dict');
    const conv = Object.fromEntries(m.layers.filter((l) => l.op === 'Conv').map((l) => [l.name, `${l.shape.join('x')} g${l.groups} k${l.kernel!.join('x')}`]));
    assert.deepEqual(conv, { stem: '16x3 g1 k1x1', tconv: '32x36 g4 k9x1', dwconv: '32x9 g32 k3x3', conv1d: '24x96 g1 k3' });
    assert.equal(m.layers.find((l) => l.name === 'dwconv')!.factorizable, false);
    // Optimizer state (momentum buffers of the same shapes) is not part of the model.
    assert.ok(m.tensorNames().every((k) => !k.startsWith('optimizer')));
  });

  test('DataParallel: the module. prefix is removed from names and tensors', async () => {
    const m = await open('dataparallel.pt');
    assert.equal(m.removedPrefix, 'module.');
    assert.deepEqual(m.layers.map((l) => l.name), ['stem', 'tconv', 'dwconv', 'conv1d', 'fc']);
    assert.equal(m.layers[1].groups, 1, 'no sidecar here: groups default to 1');
  });

  test('fp16 and bfloat16 weights widen exactly; a nested dict; strided, offset and tied tensors', async () => {
    const h = await open('fp16.bin');
    assert.equal(h.layers.find((l) => l.name === 'head')!.dtype, 'float16');
    assert.equal(h.layers.find((l) => l.name === 'extra.bf16')!.dtype, 'bfloat16');
    const n = await open('nested.pt');
    assert.equal(n.summary.metadata['pytorch.stateDict'], 'model.state_dict');
    assert.deepEqual(n.tensor('proj.weight')!.shape, [32, 20]);
    assert.ok(n.summary.factorizableParams <= n.summary.totalParams, 'tied weights counted once');
    assert.equal(n.summary.totalParams, Object.entries(expected['nested.pt'].keys).filter(([k]) => k !== 'tied.weight')
      .reduce((a, [, k]) => a + k.shape.reduce((x, y) => x * y, 1), 0));
  });

  for (const file of ['transformer.pt', 'skeleton.pth', 'fp16.bin', 'nested.pt', 'encoder.safetensors']) {
    test(`${file}: singular values against numpy (per conv group)`, async () => {
      const m = await open(file);
      const spectra = await computeSpectra(m, { order: 'module', threads: 1 });
      assert.ok(spectra.length > 0);
      for (const s of spectra) {
        const layer = m.layers.find((l) => l.name === s.layer)!;
        const ref = expected[file].svd[layer.weight];
        assert.ok(ref, `numpy reference for ${layer.weight}`);
        const got = s.groups ?? [s.singularValues];
        assert.equal(got.length, ref.length, `${s.layer}: groups`);
        got.forEach((g, gi) => {
          const tol = 1e-6 * ref[gi][0] + 1e-12;
          assert.equal(g.length, ref[gi].length, `${s.layer}: count`);
          g.forEach((v, i) => assert.ok(Math.abs(v - ref[gi][i]) <= tol, `${s.layer} g${gi} σ${i}: ${v} vs numpy ${ref[gi][i]}`));
        });
      }
    });
  }

  test('bytes are read when used, from the file as it was opened', async () => {
    const path = join(dir, 'transformer.pt');
    const copy = join(dir, 'lazy.pt');
    writeFileSync(copy, readFileSync(path));
    const m = await openModel(copy);
    const t = m.tensor('head.weight')!;
    assert.equal(createHash('sha256').update(t.bytes()).digest('hex'), expected['transformer.pt'].keys['head.weight'].sha256);
    utimesSync(copy, new Date(), new Date(Date.now() + 5000)); // the file changes after open
    assert.throws(() => m.tensor('embed.weight')!.bytes(), /lazy\.pt changed on disk since it was opened/);
  });

  test('the legacy format, TorchScript and a pickled nn.Module are refused with what to do', async () => {
    await rejects(openModel(join(dir, 'legacy.pt')), 'UNSUPPORTED', /legacy torch\.save format/);
    await rejects(openModel(join(dir, 'scripted.pt')), 'UNSUPPORTED', /TorchScript archive/);
    await rejects(openModel(join(dir, 'whole_module.pt')), 'UNSUPPORTED', /imports torch\.nn\.modules\.linear\.Linear/);
  });

  test('a sidecar naming no conv layer, or groups that do not divide, is a clear error', async () => {
    const sidecar = join(dir, 'dataparallel.pt.rankscope.json');
    writeFileSync(sidecar, JSON.stringify({ groups: { nosuch: 2 } }));
    await rejects(openModel(join(dir, 'dataparallel.pt')), 'BAD_ARGUMENT', /gives groups for 'nosuch', which is no conv kernel/);
    writeFileSync(sidecar, JSON.stringify({ groups: { stem: 3 } }));
    await rejects(openModel(join(dir, 'dataparallel.pt')), 'BAD_ARGUMENT', /'stem' has 16 output channels, which 3 groups do not divide/);
    writeFileSync(sidecar, '{"groups": ');
    await rejects(openModel(join(dir, 'dataparallel.pt')), 'BAD_ARGUMENT', /not JSON/);
    rmSync(sidecar);
  });
});

describe('checkpoints whose pickle would run code', { skip }, () => {
  let cases: Record<string, { file: string; marker: string; names: string; live: boolean | null }>;
  before(() => {
    mkdirSync(join(dir, 'mal'));
    runPython(readFileSync(join(__dirname, 'malicious_pickles.py'), 'utf8'), [join(dir, 'mal')]);
    cases = JSON.parse(readFileSync(join(dir, 'mal', 'cases.json'), 'utf8'));
  });

  test('each payload is live: Python\'s pickle (or torch.load) runs it', () => {
    const live = Object.entries(cases).filter(([, c]) => c.live !== null);
    assert.ok(live.length >= 9);
    for (const [name, c] of live) assert.equal(c.live, true, `${name} did not run under Python, so the test would prove nothing`);
  });

  test('openModel refuses each, naming the global or opcode, and nothing runs', async () => {
    for (const [name, c] of Object.entries(cases)) {
      await rejects(openModel(c.file), 'UNSUPPORTED', new RegExp(`Refused to load ${name}\\.pt: .*${c.names.replace(/[.]/g, '\\.')}`));
      assert.equal(existsSync(c.marker), false, `${name}: the payload ran`);
    }
  });
});
