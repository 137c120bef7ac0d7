// `rankscope compress` as a user runs it: a real process, real files, exit codes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openOnnx } from '../../../src/core/formats/onnx';
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
  assert.match(r.out, /check: 3 random inputs, relative output deviation max \d\.\d+e[-+]\d+, mean \d\.\d+e[-+]\d+/);
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

test('--round-to without a value rounds ranks up to multiples of 8', () => {
  const planFile = join(dir, 'round.plan.json');
  const r = cli(model, '--energy', '0.8', '--round-to', '--dry-run', '--save-plan', planFile);
  assert.equal(r.code, 0, r.err);
  const plan = JSON.parse(readFileSync(planFile, 'utf8'));
  const ks = plan.layers.filter((l: { skipped?: boolean }) => !l.skipped).map((l: { k: number }) => l.k);
  assert.ok(ks.length > 0 && ks.every((k: number) => k % 8 === 0), JSON.stringify(ks));
  assert.equal(plan.request.roundTo, 8);
});
