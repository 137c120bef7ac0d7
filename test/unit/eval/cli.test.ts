// `rankscope eval` / `rankscope sweep` end to end (real files, ONNX Runtime, COMPRESS), the
// task file and its schema, and the static report.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeMlpFixture, writeTwoBranchFixture } from './fixtures';
import { evalCommand, type EvalReport } from '../../../src/cli/eval';
import { sweepCommand } from '../../../src/cli/sweep';
import type { CommandIO } from '../../../src/cli/command';
import { readTaskFile, resolveTask, validateTask } from '../../../src/core/eval/task';
import type { SweepResult } from '../../../src/core/eval/sweep';
import { RankscopeError } from '../../../src/core/errors';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'rankscope-evalcli-'));
  writeMlpFixture(dir);
  writeTwoBranchFixture(dir);
});
after(() => rmSync(dir, { recursive: true, force: true }));

function io(): CommandIO & { lines: string[] } {
  const lines: string[] = [];
  return { lines, out: (s) => lines.push(s), err: () => undefined, signal: new AbortController().signal };
}

test('rankscope eval --json: accuracy and fidelity equal numpy', async () => {
  const ref = JSON.parse(readFileSync(join(dir, 'ref.json'), 'utf8'));
  const o = io();
  const code = await evalCommand.run([join(dir, 'mlp_perturbed.onnx'), '--data', join(dir, 'data.npz'), '--input', 'x=x', '--labels', 'y',
    '--compare', join(dir, 'mlp.onnx'), '--threads', '1', '--runs', '3', '--json'], o);
  assert.equal(code, 0);
  const report = JSON.parse(o.lines.join('\n')) as EvalReport;
  assert.equal(report.metrics.top1, ref.pert[0]);
  assert.equal(report.metrics.top5, ref.pert[1]);
  assert.equal(report.original!.metrics.top1, ref.orig[0]);
  assert.equal(report.metrics.agreement, ref.agreement);
  assert.ok(Math.abs(report.metrics.meanKL! - ref.meanKL) < 1e-4 * ref.meanKL);
  assert.equal(report.latency!.runs, 3);
  assert.equal(report.original!.latency!.runs, 3);
});

test('rankscope eval reads rankscope.json (paths relative to it); options override it', async () => {
  const task = join(dir, 'rankscope.json');
  writeFileSync(task, JSON.stringify({ model: 'mlp.onnx', data: 'data.npz', inputs: { x: 'x' }, labels: 'y_onehot', batchSize: 16, threads: 1, latency: false }));
  const o = io();
  assert.equal(await evalCommand.run(['--task', task, '--json'], o), 0);
  const report = JSON.parse(o.lines.join('\n')) as EvalReport;
  assert.equal(report.model, join(dir, 'mlp.onnx'));
  assert.equal(report.latency, undefined);
  const ref = JSON.parse(readFileSync(join(dir, 'ref.json'), 'utf8'));
  assert.equal(report.metrics.top1, ref.orig[0]);
  const limited = io();
  await evalCommand.run(['--task', task, '--limit', '20', '--json'], limited);
  assert.equal((JSON.parse(limited.lines.join('\n')) as EvalReport).samples, 20);
  // Human-readable form.
  const text = io();
  await evalCommand.run(['--task', task], text);
  assert.match(text.lines.join('\n'), /top-1 accuracy\s+\d+\.\d\d %/);
});

test('rankscope eval: bad options and data are one-line errors', async () => {
  const npz = join(dir, 'data.npz');
  const model = join(dir, 'mlp.onnx');
  await assert.rejects(evalCommand.run([model, '--data', npz, '--input', 'x=xbad'], io()), (e: RankscopeError) => e.code === 'SHAPE_MISMATCH' && /xbad has shape \(200, 15\)/.test(e.message));
  await assert.rejects(evalCommand.run([model, '--data', npz, '--labels', 'none', '--input', 'x=x'], io()), (e: RankscopeError) => e.code === 'BAD_ARGUMENT' && /no labels/.test(e.message) && /--compare/.test(e.hint ?? ''));
  await assert.rejects(evalCommand.run([model, '--data', npz, '--ep', 'tpu'], io()), (e: RankscopeError) => e.code === 'BAD_ARGUMENT' && /--ep/.test(e.message));
  await assert.rejects(evalCommand.run([model, '--data', npz, '--batch-size', '0'], io()), (e: RankscopeError) => e.code === 'BAD_ARGUMENT' && /--batch-size/.test(e.message));
  await assert.rejects(evalCommand.run([model], io()), (e: RankscopeError) => e.code === 'BAD_ARGUMENT' && /--data/.test(e.message));
  await assert.rejects(evalCommand.run([model, '--data', npz, '--bogus'], io()), (e: RankscopeError) => e.code === 'BAD_ARGUMENT');
});

test('task file: validation names the file and field; schema and validator know the same fields', async () => {
  const path = join(dir, 'bad.json');
  const cases: [unknown, RegExp][] = [
    [{ batchSize: 0 }, /"batchSize" must be an integer ≥ 1/],
    [{ preset: 'kinetics' }, /"preset" must be one of ntu, none/],
    [{ modle: 'x.onnx' }, /"modle" is not a known field/],
    [{ ntu: { crop: 2 } }, /"ntu.crop"/],
    [{ sweep: { levels: [0.2, 1.5] } }, /"sweep.levels"/],
    [{ sweep: { allocations: ['random'] } }, /"sweep.allocations"/],
    [{ sweep: { methods: ['asvd'] } }, /"sweep.methods" must be a non-empty list of svd, whitened/],
    [{ sweep: { methods: [] } }, /"sweep.methods"/],
    [[1, 2], /must be an object/],
  ];
  for (const [json, message] of cases) {
    writeFileSync(path, JSON.stringify(json));
    await assert.rejects(readTaskFile(path), (e: RankscopeError) => e.code === 'BAD_ARGUMENT' && e.message.startsWith(path) && message.test(e.message), JSON.stringify(json));
  }
  writeFileSync(path, '{ nope');
  await assert.rejects(readTaskFile(path), (e: RankscopeError) => e.code === 'BAD_ARGUMENT' && /not valid JSON/.test(e.message));
  const schema = JSON.parse(readFileSync('schemas/rankscope.schema.json', 'utf8'));
  for (const key of Object.keys(schema.properties)) assert.doesNotThrow(() => validateTask({ [key]: undefined }, 'x'), key);
  assert.throws(() => validateTask({ notInSchema: 1 }, 'x'));
  const known = Object.keys(schema.properties).filter((k) => k !== '$schema').sort();
  const validatorKnows = known.filter((k) => { try { validateTask({ [k]: Symbol('probe') as never }, 'x'); return true; } catch (e) { return !/is not a known field/.test((e as Error).message); } });
  assert.deepEqual(validatorKnows, known);
  const t = resolveTask({ batchSize: 8, ep: 'cpu' }, { batchSize: 4 });
  assert.equal(t.batchSize, 4);
  assert.equal(t.metric, 'top1');
  assert.deepEqual(t.latency, { warmup: 3, runs: 20 });
});

test('rankscope sweep writes json, csv, svg and html; the re-run comes from the cache', async () => {
  const out = join(dir, 'sweep-out');
  const argv = [join(dir, 'two_branch.onnx'), '--data', join(dir, 'two_branch.npz'), '--levels', '0.3,50%', '--allocation', 'uniform,sensitivity',
    '--sensitivity-samples', '256', '--runs', '2', '--threads', '1', '-o', out];
  const first = io();
  assert.equal(await sweepCommand.run(argv, first), 0);
  for (const f of ['sweep.json', 'sweep.csv', 'sweep.svg', 'sweep.html']) assert.ok(existsSync(join(out, f)), f);
  const result = JSON.parse(readFileSync(join(out, 'sweep.json'), 'utf8')) as SweepResult;
  // The points that need no probes come first, then the sensitivity points (after the probes).
  assert.deepEqual(result.points.map((p) => p.id), ['uniform:0.3', 'uniform:0.5', 'sensitivity:0.3', 'sensitivity:0.5']);
  assert.deepEqual({ ...result.calibration, probes: 0, inferred: 0 }, { samples: 256, of: 512, seed: 0, measure: 'kl', energyEpsilon: 0.002, probes: 0, inferred: 0 });
  const csv = readFileSync(join(out, 'sweep.csv'), 'utf8').trim().split('\n');
  assert.equal(csv.length, 1 + 5);
  assert.match(csv[0], /^id,kind,allocation,level,label,params,file_size/);
  const svg = readFileSync(join(out, 'sweep.svg'), 'utf8');
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.match(svg, /stroke="#d62728"[^>]*stroke-dasharray/); // the Pareto line
  assert.equal((svg.match(/<circle [^>]*><title>/g) ?? []).length, 4);
  const html = readFileSync(join(out, 'sweep.html'), 'utf8');
  assert.ok(html.includes(svg.slice(0, 200)) && /<table>/.test(html) && !/<script/.test(html));
  assert.ok(first.lines.some((l) => /^sensitivity −30 %/.test(l)));
  assert.ok(first.lines.some((l) => /^sensitivity probes: \d+ measured on a calibration subset of 256 of 512 samples \(seed 0\), loss = mean KL to the original$/.test(l)), first.lines.join('\n'));
  assert.match(html, /calibration subset of 256 of 512 samples \(seed 0\)/);
  const again = io();
  await sweepCommand.run(argv, again);
  assert.equal(again.lines.filter((l) => /\(cached\)$/.test(l)).length, 5);
  await assert.rejects(sweepCommand.run([join(dir, 'two_branch.onnx'), '--data', join(dir, 'two_branch.npz'), '-o', out], io()), (e: RankscopeError) => e.code === 'BAD_ARGUMENT' && /--levels/.test(e.message));
  await assert.rejects(sweepCommand.run([join(dir, 'two_branch.onnx'), '--data', join(dir, 'two_branch.npz'), '--levels', '0.5', '--allocation', 'greedy', '-o', out], io()), (e: RankscopeError) => e.code === 'BAD_ARGUMENT');
});
