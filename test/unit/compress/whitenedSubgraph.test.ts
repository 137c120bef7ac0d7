// Layers inside subgraphs (If branches, Loop bodies) and whitened factorization: the calibration
// pass exposes main-graph activations as extra graph outputs, which a value computed inside a
// branch or body cannot be, so such a layer is refused with the reason and the way out, both by
// the core pass and by the CLI (exit 2, one line); never silently factorized by plain SVD. Left
// out with --layers, the rest of the model is whitened and the subgraph layers stay dense.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPython } from '../../helpers/python';
import { openOnnx } from '../../../src/core/formats/onnx';
import { calibrate } from '../../../src/core/eval/calibration';
import { readEntries } from '../../../src/core/compress';

let dir: string;

// x (N, 6) → MatMul fc (6×8) → If (sum > 0): then MatMul a (8×4, a main-graph initializer seen
// from the branch), else MatMul b (8×4) → z; and a Loop whose body multiplies by cell (8×8) → looped.
const BUILD = String.raw`
import numpy as np, onnx, sys, os
from onnx import helper as h, TensorProto as T, numpy_helper as nh
d = sys.argv[1]; rng = np.random.default_rng(3)
init = lambda name, shape: nh.from_array(rng.standard_normal(shape).astype(np.float32), name)
branch = lambda name, w: h.make_graph([h.make_node('MatMul', ['hid', w], [name + '_y'], name='/' + name + '/MatMul')], name, [],
                                      [h.make_tensor_value_info(name + '_y', T.FLOAT, None)])
body = h.make_graph([h.make_node('MatMul', ['state', 'cell'], ['next'], name='/cell/MatMul'), h.make_node('Identity', ['cond_in'], ['cond_out'])], 'body',
                    [h.make_tensor_value_info('i', T.INT64, []), h.make_tensor_value_info('cond_in', T.BOOL, []), h.make_tensor_value_info('state', T.FLOAT, None)],
                    [h.make_tensor_value_info('cond_out', T.BOOL, []), h.make_tensor_value_info('next', T.FLOAT, None)])
nodes = [h.make_node('MatMul', ['x', 'fc'], ['hid'], name='/fc/MatMul'),
         h.make_node('ReduceSum', ['hid'], ['total'], keepdims=0), h.make_node('Greater', ['total', 'zero'], ['positive']),
         h.make_node('If', ['positive'], ['z'], name='/If', then_branch=branch('a', 'a'), else_branch=branch('b', 'b')),
         h.make_node('Loop', ['trips', '', 'hid'], ['looped'], name='/Loop', body=body)]
inits = [init('fc', (6, 8)), init('a', (8, 4)), init('b', (8, 4)), init('cell', (8, 8)),
         nh.from_array(np.array(0, np.float32), 'zero'), nh.from_array(np.array(2, np.int64), 'trips')]
g = h.make_graph(nodes, 'branchy', [h.make_tensor_value_info('x', T.FLOAT, ['N', 6])], [h.make_tensor_value_info('z', T.FLOAT, ['N', 4]), h.make_tensor_value_info('looped', T.FLOAT, ['N', 8])], inits)
m = h.make_model(g, opset_imports=[h.make_opsetid('', 13)]); m.ir_version = 8
onnx.checker.check_model(m, full_check=True)
onnx.save(m, os.path.join(d, 'branchy.onnx'))
np.savez(os.path.join(d, 'branchy.npz'), x=rng.standard_normal((40, 6)).astype(np.float32))
`;

const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, '../../../src/cli/main.ts'), ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'rankscope-whitened-subgraph-'));
  runPython(BUILD, [dir]);
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('whitened factorization of layers inside subgraphs', () => {
  it('the model has its layers where the test says (main graph, If branches, Loop body)', async () => {
    const model = await openOnnx(join(dir, 'branchy.onnx'));
    assert.deepEqual(model.layers.filter((l) => l.factorizable).map((l) => l.name).sort(), ['a', 'b', 'cell', 'fc']);
  });

  it('calibration refuses an If-branch or Loop-body layer, naming the layer, where it is used, and the way out', async () => {
    const model = await openOnnx(join(dir, 'branchy.onnx'));
    for (const [name, where] of [['a', /If '\/If' then_branch/], ['b', /If '\/If' else_branch/], ['cell', /Loop '\/Loop' body/]] as const) {
      await assert.rejects(calibrate(model, model.layers.filter((l) => l.name === name || l.name === 'fc'), { data: join(dir, 'branchy.npz') }), (e: Error & { code?: string; hint?: string }) => {
        assert.equal(e.code, 'UNSUPPORTED');
        assert.match(e.message, new RegExp(`Layer '${name}' is used inside a subgraph`));
        assert.match(e.message, where);
        assert.match(e.hint ?? '', /--layers.*--method svd/);
        return true;
      });
    }
    // The main-graph layer alone calibrates (its Gram is XᵀX of the 40 inputs).
    const ok = await calibrate(model, model.layers.filter((l) => l.name === 'fc'), { data: join(dir, 'branchy.npz') });
    assert.equal(ok.grams.get('fc')!.vectors, 40);
  });

  it('compress --method whitened: exit 2 with one line for the default selection; with --layers fc the subgraph layers stay dense', async () => {
    const refused = cli('compress', join(dir, 'branchy.onnx'), '-o', join(dir, 'all.onnx'), '--rank', '2', '--method', 'whitened', '--data', join(dir, 'branchy.npz'), '--no-cache');
    assert.equal(refused.code, 2, refused.err);
    assert.equal(refused.err.trim().split('\n').length, 1, refused.err);
    assert.match(refused.err, /is used inside a subgraph .*reads main-graph activations only/);
    const out = join(dir, 'fc.onnx');
    const ok = cli('compress', join(dir, 'branchy.onnx'), '-o', out, '--rank', '2', '--method', 'whitened', '--layers', 'fc', '--data', join(dir, 'branchy.npz'), '--no-cache');
    assert.equal(ok.code, 0, ok.err);
    const entries = readEntries((await openOnnx(out)).proto);
    assert.deepEqual(entries.map((e) => [e.layer, e.method]), [['fc', 'whitened']], 'only fc factorized, by the whitened method');
  });
});
