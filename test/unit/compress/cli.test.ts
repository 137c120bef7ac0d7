// `rankscope compress` as a user runs it: a real process, real files, exit codes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openOnnx } from '../../../src/core/formats/onnx';
import { runPython } from '../../helpers/python';
import { buildFixtures } from './helpers';

let dir: string;
let model: string;
let other: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'rankscope-compress-cli-'));
  buildFixtures(join(dir, 'full'), 0);
  buildFixtures(join(dir, 'lowrank'), 4);
  model = join(dir, 'full', 'conv.onnx');
  other = join(dir, 'lowrank', 'conv.onnx');
});
after(() => rmSync(dir, { recursive: true, force: true }));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, '../../../src/cli/main.ts'), 'compress', ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('--dry-run prints the plan table and totals, writes nothing', () => {
  const out = join(dir, 'dry.onnx');
  const r = cli(model, '-o', out, '--energy', '0.9', '--dry-run');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^layer\s+shape\s+k\s+params\s+after\s+energy/m);
  assert.match(r.out, /^c1\s+40×216\s+\d+\s+8,640\s+[\d,]+\s+9\d\.\d\d %/m);
  assert.match(r.out, /^c3\s+64×216 g2 /m);
  assert.match(r.out, /skipped: rank \d+ saves no parameters/);
  assert.match(r.out, /\d+ of 5 layers factorized, \d+ skipped/);
  assert.match(r.out, /layer parameters: 40,224 → [\d,]+ \(\d+\.\d %\)/);
  assert.match(r.out, /model parameters: /);
  assert.ok(!existsSync(out));
});

test('writes the model and the plan; the saved plan re-applies to the same bytes; --check reports deviation', () => {
  const out = join(dir, 'budget.onnx');
  const planFile = join(dir, 'budget.plan.json');
  const r = cli(model, '-o', out, '--budget', '40%', '--save-plan', planFile, '--check', '3');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /wrote .*budget\.onnx: .* → .* \(\d+\.\d %\)/);
  assert.match(r.out, /check: 3 random inputs \(x 2×24×12×11, s 2×16×30, v 1×12×6×5×4\), relative output deviation max \d\.\d+e[-+]\d+, mean \d\.\d+e[-+]\d+/);
  const plan = JSON.parse(readFileSync(planFile, 'utf8'));
  assert.equal(plan.format, 'rankscope.plan');
  assert.ok(plan.totals.paramsAfter <= 0.6 * plan.totals.paramsBefore);
  const again = join(dir, 'budget.again.onnx');
  const r2 = cli(model, '-o', again, '--plan', planFile);
  assert.equal(r2.code, 0, r2.err);
  assert.deepEqual(readFileSync(again), readFileSync(out));
});

test('a hand-edited plan is applied with the edited rank', async () => {
  const planFile = join(dir, 'edit.plan.json');
  assert.equal(cli(model, '--rank', '8', '--layers', 'c1,c3d', '--dry-run', '--save-plan', planFile).code, 0);
  const plan = JSON.parse(readFileSync(planFile, 'utf8'));
  plan.layers.find((l: { layer: string }) => l.layer === 'c1').k = 5;
  writeFileSync(planFile, JSON.stringify(plan));
  const out = join(dir, 'edited.onnx');
  const r = cli(model, '-o', out, '--plan', planFile);
  assert.equal(r.code, 0, r.err);
  const m = await openOnnx(out);
  assert.equal(m.layers.find((l) => l.name === 'c1')!.compressed!.rank, 5);
  assert.equal(m.layers.find((l) => l.name === 'c3d')!.compressed!.rank, 8);
  assert.ok(!m.layers.find((l) => l.name === 'c2')!.compressed, 'unselected layers stay dense');
});

test('--recompose makes a factorized layer dense as A·B, naming its source file', async () => {
  const packed = join(dir, 'packed.onnx');
  assert.equal(cli(model, '-o', packed, '--rank', '6', '--layers', 'c1*').code, 0);
  const restored = join(dir, 'restored.onnx');
  const r = cli(packed, '-o', restored, '--recompose', 'c1');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, new RegExp(`recomposed c1 to dense A·B \\(original was ${model.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\)`));
  const m = await openOnnx(restored);
  assert.ok(!m.layers.find((l) => l.name === 'c1')!.compressed);
  assert.ok(m.layers.find((l) => l.name === 'c1d')!.compressed, 'the other factorized layer stays');
});

test('--restore puts back the original weights byte for byte; a changed or missing source is refused (exit 2)', async () => {
  const source = join(dir, 'source.onnx');
  copyFileSync(model, source);
  const packed = join(dir, 'packed-from-source.onnx');
  assert.equal(cli(source, '-o', packed, '--rank', '6', '--layers', 'c1').code, 0);
  const out = join(dir, 'restored-original.onnx');
  const r = cli(packed, '-o', out, '--restore', 'c1');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, new RegExp(`^restored c1: original weights from ${source.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`, 'm'));
  const [orig, back] = [await openOnnx(source), await openOnnx(out)];
  const weight = (m: typeof orig) => Buffer.from(m.tensor(m.layers.find((l) => l.name === 'c1')!.weight)!.bytes());
  assert.ok(!back.layers.find((l) => l.name === 'c1')!.compressed);
  assert.ok(weight(back).equals(weight(orig)), 'the original bytes, not A·B');
  // Same names and shapes, other values (the low-rank fixture): the recorded hash does not match.
  copyFileSync(other, source);
  const changed = cli(packed, '-o', join(dir, 'restored-2.onnx'), '--restore', 'c1');
  assert.equal(changed.code, 2);
  assert.match(changed.err, /the weight '.+' in .*source\.onnx has changed since compression \(hash mismatch\)\. Use "Recompose to Dense" \(CLI: --recompose\)/);
  rmSync(source);
  const gone = cli(packed, '-o', join(dir, 'restored-3.onnx'), '--restore', 'c1');
  assert.equal(gone.code, 2);
  assert.match(gone.err, /its source model .*source\.onnx is gone/);
  assert.equal(gone.err.trim().split('\n').length, 1, 'one line, no stack');
  assert.ok(!existsSync(join(dir, 'restored-2.onnx')) && !existsSync(join(dir, 'restored-3.onnx')), 'nothing written');
});

test('bad input: a clear message and exit code 2', () => {
  const out = join(dir, 'bad.onnx');
  const cases: [string[], RegExp][] = [
    [[model, '-o', out, '--rank', '4', '--layers', 'nope'], /No layer named 'nope'/],
    [[model, '-o', out, '--rank', '4', '--layers', 'zz*'], /No layer matches 'zz\*'/],
    [[model, '-o', out, '--rank', '0'], /--rank must be an integer ≥ 1/],
    [[model, '-o', out, '--rank', '100000'], /Rank 100000 is out of range: the selected layers allow at most \d+/],
    [[model, '-o', out, '--energy', '1.5'], /energy must be in \(0, 1\]/],
    [[model, '-o', model, '--rank', '4'], /is the input model; Rankscope never overwrites a model/],
    [[model, '-o', out], /Missing a policy/],
    [[model, '-o', out, '--rank', '4', '--energy', '0.9'], /Give one policy/],
    [[model, '--rank', '4'], /Missing -o OUT/],
    [[join(dir, 'missing.onnx'), '-o', out, '--rank', '4'], /not found/],
    [[model, '-o', out, '--budget', '0.9999'], /out of reach/],
    [[model, '-o', out, '--frobnicate'], /Unknown option/],
  ];
  for (const [args, message] of cases) {
    const r = cli(...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, message, args.join(' '));
  }
  // A plan made for other weights.
  const planFile = join(dir, 'other.plan.json');
  assert.equal(cli(other, '--rank', '4', '--dry-run', '--save-plan', planFile).code, 0);
  const r = cli(model, '-o', out, '--plan', planFile);
  assert.equal(r.code, 2);
  assert.match(r.err, /different weights than the plan was made for/);
  assert.ok(!existsSync(out));
});

test('-o must name a regular file in a folder that exists: exit 2 naming the path, nothing replaced', () => {
  const fifo = join(dir, 'out.fifo');
  execFileSync('mkfifo', [fifo]);
  const file = join(dir, 'plain.txt');
  writeFileSync(file, 'x');
  const folder = join(dir, 'a-folder');
  mkdirSync(folder);
  const cases: [string[], RegExp][] = [
    [['-o', fifo], /out\.fifo is a named pipe \(FIFO\), not a regular file/],
    [['-o', join(dir, 'no-such-folder', 'x.onnx')], /x\.onnx: the folder .*no-such-folder does not exist\. Create the folder first/],
    [['-o', join(file, 'x.onnx')], /plain\.txt is a file, not a folder/],
    [['-o', folder], /a-folder is a folder, not a file/],
    [['--dry-run', '--save-plan', fifo], /out\.fifo is a named pipe/],
  ];
  for (const [args, message] of cases) {
    const r = cli(model, '--rank', '4', ...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.equal(r.err.trim().split('\n').length, 1, r.err);
    assert.match(r.err, message, args.join(' '));
    assert.doesNotMatch(r.err, /internal error/);
  }
  assert.ok(lstatSync(fifo).isFIFO(), 'the FIFO is still a FIFO');
  assert.deepEqual(readdirSync(folder), []);
  assert.equal(readFileSync(file, 'utf8'), 'x');
});

test('--round-to without a value rounds ranks up to multiples of 8', () => {
  const planFile = join(dir, 'round.plan.json');
  const r = cli(model, '--energy', '0.8', '--round-to', '--dry-run', '--save-plan', planFile);
  assert.equal(r.code, 0, r.err);
  const plan = JSON.parse(readFileSync(planFile, 'utf8'));
  const ks = plan.layers.filter((l: { skipped?: boolean }) => !l.skipped).map((l: { k: number }) => l.k);
  assert.ok(ks.length > 0 && ks.every((k: number) => k % 8 === 0), JSON.stringify(ks));
  assert.equal(plan.request.roundTo, 8);
});

test('a structurally invalid model: exit 2, one line naming the problem, nothing written', () => {
  const bad = join(dir, 'invalid');
  mkdirSync(bad);
  runPython(readFileSync(join(__dirname, '../formats/invalid_models.py'), 'utf8'), [bad]);
  for (const file of readdirSync(bad)) {
    const out = join(dir, `from-${file}`);
    const r = cli(join(bad, file), '-o', out, '--rank', '2');
    assert.equal(r.code, 2, `${file}: ${r.err}`);
    assert.match(r.err, new RegExp(`^rankscope compress: ${file.replace('.', '\\.')} is not a valid ONNX model: .+\\n$`), file);
    assert.ok(!existsSync(out), `${file}: nothing written`);
  }
});

test('with external data the size line counts the data files on both sides', () => {
  const ext = join(dir, 'ext');
  runPython(`
import onnx, sys, os
os.makedirs(os.path.dirname(sys.argv[2]), exist_ok=True)
onnx.save(onnx.load(sys.argv[1]), sys.argv[2], save_as_external_data=True, all_tensors_to_one_file=True, location='conv.weights', size_threshold=0)`,
  [model, join(ext, 'conv.onnx')]);
  const out = join(ext, 'conv.k4.onnx');
  const r = cli(join(ext, 'conv.onnx'), '-o', out, '--rank', '4');
  assert.equal(r.code, 0, r.err);
  const before = statSync(join(ext, 'conv.onnx')).size + statSync(join(ext, 'conv.weights')).size;
  const after = statSync(out).size + statSync(`${out}.data`).size;
  const [, ratio] = r.out.match(/wrote .*conv\.k4\.onnx: .* → .* \((\d+\.\d) %\)/) ?? [];
  assert.equal(ratio, ((after / before) * 100).toFixed(1), r.out);
  assert.ok(Number(ratio) < 100, 'compressing shrinks the model');
});

test('--check: inputs from --data or --input-shape; a symbolic dimension is refused, not set to 1; ORT logs stay off stderr', () => {
  // x (N, T, 16) with T symbolic; an unused initializer makes ONNX Runtime log a warning when it loads.
  const seq = join(dir, 'seq.onnx');
  const data = join(dir, 'seq.npz');
  runPython(`
import sys, numpy as np, onnx
from onnx import helper as h, TensorProto as T, numpy_helper as nh
rng = np.random.default_rng(4)
w = rng.standard_normal((16, 48)).astype(np.float32)
g = h.make_graph([h.make_node('MatMul', ['x', 'fc.weight'], ['y'], name='/fc/MatMul')], 'g',
  [h.make_tensor_value_info('x', T.FLOAT, ['N', 'T', 16])], [h.make_tensor_value_info('y', T.FLOAT, ['N', 'T', 48])],
  [nh.from_array(w, 'fc.weight'), nh.from_array(w[:2], 'unused')])
m = h.make_model(g, opset_imports=[h.make_opsetid('', 17)]); m.ir_version = 8
onnx.save(m, sys.argv[1])
np.savez(sys.argv[2], x=rng.standard_normal((5, 7, 16)).astype(np.float32))
`, [seq, data]);
  const out = join(dir, 'seq.small.onnx');
  const refused = cli(seq, '-o', out, '--rank', '4', '--check', '2');
  assert.equal(refused.code, 2, refused.err);
  assert.match(refused.err, /--check cannot make inputs for 'x' \(N, T, 16\): axis 1 is symbolic dimension 'T'.*--input-shape NAME=1x3x48x320.*--data DATA\.npz/);
  assert.equal(refused.err.trim().split('\n').length, 1);
  assert.ok(!existsSync(out), 'refused before anything is written');
  const shaped = cli(seq, '-o', out, '--rank', '4', '--check', '2', '--input-shape', 'x=2x9x16');
  assert.equal(shaped.code, 0, shaped.err);
  assert.match(shaped.out, /check: 2 random inputs \(x 2×9×16\), relative output deviation max \d\.\d+e[-+]\d+/);
  const real = cli(seq, '-o', join(dir, 'seq.small2.onnx'), '--rank', '4', '--check', '3', '--data', data);
  assert.equal(real.code, 0, real.err);
  assert.match(real.out, new RegExp(`check: 3 samples of ${data.replace(/[.*+?^$\{\}()|[\]\\/]/g, '\\$&')} \\(x 1×7×16\\), relative output deviation max`));
  for (const r of [shaped, real]) {
    assert.doesNotMatch(r.err, /onnxruntime|\x1b\[/, 'ONNX Runtime log lines on stderr');
  }
  const bad: [string[], RegExp][] = [
    [['--input-shape', 'x=1x9'], /--input-shape x=1x9 does not fit model input 'x' \(N, T, 16\)/],
    [['--input-shape', 'x=1x9x15'], /does not fit/],
    [['--input-shape', 'z=1x9x16'], /names 'z', which is not a model input/],
    [['--input-shape', 'x=big'], /--input-shape takes NAME=DIMS/],
    [['--input-shape', 'x=1x9x16', '--data', data], /--input-shape is for random inputs/],
  ];
  for (const [args, message] of bad) {
    const r = cli(seq, '-o', join(dir, 'seq.bad.onnx'), '--rank', '4', '--check', '1', ...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, message, args.join(' '));
    assert.ok(!existsSync(join(dir, 'seq.bad.onnx')), `${args.join(' ')}: refused before writing`);
  }
  const noCheck = cli(seq, '-o', join(dir, 'seq.bad.onnx'), '--rank', '4', '--data', data);
  assert.equal(noCheck.code, 2);
  assert.match(noCheck.err, /need --check N/);
});
