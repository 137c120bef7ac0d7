// Fine-tuning a PyTorch checkpoint as the user's own nn.Module, through the built CLI and the real
// worker (Debian's torch, CPU): the model code is test-local (factory/skel/models.py, imported with
// --factory skel.models:build --factory-path), the checkpoint is saved by torch.save, the factors
// come from `rankscope compress model.pt`. Checked: the loss falls; the written state dict loads
// into the factorized module the way docs/pytorch.md says (in a separate Python, no ONNX) and gives
// the outputs the worker reported; the inputs never change; Ctrl-C leaves a checkpoint and no
// output, and --resume continues at the next epoch to the same weights as an uninterrupted run;
// distillation from the dense checkpoint; and every user error is exit 2 with one line.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { WorkerMessage } from '../../../src/worker/protocol';
import { pythonHas, runPython, testPython } from '../../helpers/python';
import { tempDir } from '../formats/fixtures';

const hasTorch = pythonHas('torch', 'numpy');
const skip = !hasTorch && 'needs torch + numpy in the test Python';
const CLI = resolve('dist/cli.js');
const FACTORY_PATH = resolve('test/unit/worker/factory');
const TORCH_PATH = resolve('src/worker/python');

let dir: string;
let f: { model: string; other: string; factors: string; otherFactors: string; data: string };
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
let inputHashes: Record<string, string>;

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: dir });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** The options every run shares: the test-local factory, the data, CPU, the test Python. */
function common(...extra: string[]): string[] {
  return ['finetune', f.model, '--factors', f.factors, '--factory', 'skel.models:build', '--factory-path', FACTORY_PATH,
    '--data', f.data, '--device', 'cpu', '--python', testPython(), '--seed', '0', ...extra];
}

function events(stdout: string): { messages: WorkerMessage[]; result: Record<string, unknown> } {
  const lines = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string });
  return { messages: lines.filter((l) => l.type !== 'result') as WorkerMessage[], result: lines.find((l) => l.type === 'result') as Record<string, unknown> };
}

before(() => {
  if (!hasTorch) return;
  assert.equal(spawnSync(process.execPath, ['scripts/build.mjs'], { stdio: 'ignore' }).status, 0, 'build dist/');
  dir = tempDir('rankscope-ftmodule-');
  runPython(`import runpy, sys; sys.argv = ['module_fixture.py', sys.argv[1]]; runpy.run_path('test/unit/worker/module_fixture.py', run_name='__main__')`, [dir]);
  f = {
    model: join(dir, 'model.pt'), other: join(dir, 'other.pt'), data: join(dir, 'data.npz'),
    factors: join(dir, 'model.lowrank.safetensors'), otherFactors: join(dir, 'other.lowrank.safetensors'),
  };
  for (const [model, out] of [[f.model, f.factors], [f.other, f.otherFactors]]) {
    const r = cli(['compress', model, '-o', out, '--layers', 'tconv,fc', '--rank', '2', '--no-cache']);
    assert.equal(r.code, 0, r.err);
  }
  inputHashes = Object.fromEntries([f.model, f.factors, f.data].map((p) => [p, sha(p)]));
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/**
 * Loads `result` as docs/pytorch.md says, in a Python of its own (torch only, no Rankscope worker
 * code but rankscope_torch): apply_factors on a freshly built module (a .safetensors result
 * alone; a .pt after the factors file), then the probe inputs the worker recorded; returns
 * max |its outputs − the worker's| and facts about the loaded module.
 */
function reload(result: string, probe: string): { maxAbsDiff: number; samples: number; keys: string[]; lowRank: string[] } {
  const code = `
import json, struct, sys
import numpy as np, torch
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import rankscope_torch
from skel.models import build
result, factors, probe = sys.argv[3:6]
model = build()
if result.endswith(".safetensors"):
    rankscope_torch.apply_factors(model, result)
else:
    rankscope_torch.apply_factors(model, factors, load_untouched=False)
    model.load_state_dict(torch.load(result))
model.eval()
blob = open(probe, "rb").read()
n = struct.unpack("<Q", blob[:8])[0]
header = json.loads(blob[8:8 + n])
def tensor(name):
    info = header[name]
    a, b = info["data_offsets"]
    return torch.from_numpy(np.frombuffer(blob[8 + n + a:8 + n + b], np.float32).reshape(info["shape"]).copy())
x, want = tensor("input:input"), tensor("output:output")
with torch.no_grad():
    got = model(x)
print(json.dumps({"maxAbsDiff": float((got - want).abs().max()), "samples": x.shape[0], "keys": list(model.state_dict()),
                  "lowRank": [n for n, m in model.named_modules() if isinstance(m, (rankscope_torch.LowRankLinear, rankscope_torch.LowRankConv))]}))
`;
  return JSON.parse(runPython(code, [TORCH_PATH, FACTORY_PATH, result, f.factors, probe]));
}

/** {key: sha256 of the tensor's bytes} of a torch.save'd or safetensors state dict, read by torch. */
function tensorHashes(path: string): Record<string, string> {
  const code = `
import hashlib, json, sys, torch
sys.path.insert(0, sys.argv[2])
if sys.argv[1].endswith(".safetensors"):
    from rankscope_torch import read_factors
    state = read_factors(sys.argv[1])[0]
else:
    state = torch.load(sys.argv[1])
print(json.dumps({k: hashlib.sha256(v.contiguous().numpy().tobytes()).hexdigest() for k, v in state.items()}))`;
  return JSON.parse(runPython(code, [path, TORCH_PATH]));
}

test('the CLI fine-tunes the checkpoint as the factorized module: the loss falls, the state dict reloads and matches the worker, inputs unchanged', { skip }, () => {
  const r = cli(common('--epochs', '2', '--batch-size', '32', '--lr', '3e-3', '--json'));
  assert.equal(r.code, 0, r.err);
  const { messages, result } = events(r.out);
  assert.equal(result.status, 'completed');
  assert.equal(result.output, join(dir, 'model.finetuned.pt'), 'the default output: the next free MODEL.finetuned.pt');
  const summary = result.summary as { epochs: { trainLoss: number; valLoss: number }[]; valLossBefore: number; valAccuracyBefore: number; valAccuracyBest: number; teacher: boolean };
  assert.equal(summary.epochs.length, 2);
  assert.ok(summary.epochs[1].trainLoss < summary.epochs[0].trainLoss, `train loss ${summary.epochs.map((e) => e.trainLoss)}`);
  assert.ok(summary.epochs[1].valLoss < summary.valLossBefore, `val loss ${summary.valLossBefore} → ${summary.epochs[1].valLoss}`);
  assert.ok(summary.valAccuracyBest > summary.valAccuracyBefore, `accuracy ${summary.valAccuracyBefore} → ${summary.valAccuracyBest}`);
  assert.equal(summary.teacher, false);
  // The same events as the ONNX path, progress numbered by epoch.
  assert.deepEqual([...new Set(messages.map((m) => m.type))], ['hello', 'started', 'eval', 'progress', 'checkpoint', 'done']);
  assert.deepEqual([...new Set(messages.filter((m) => m.type === 'progress').map((m) => (m as { epoch: number }).epoch))], [1, 2]);

  const done = messages.find((m) => m.type === 'done')!;
  assert.ok(done.type === 'done' && done.probe && done.result?.verification);
  const reported = done.result.verification;
  assert.equal(reported.samples, 16);
  assert.ok(reported.maxAbsDiff <= 1e-5, `the worker's own reload check: ${reported.maxAbsDiff}`);
  const loaded = reload(result.output as string, done.probe);
  assert.equal(loaded.samples, 16);
  assert.ok(loaded.maxAbsDiff <= 1e-5, `a separate Python's reload vs the worker's outputs: max |Δ| = ${loaded.maxAbsDiff}`);
  assert.deepEqual(loaded.lowRank.sort(), ['fc', 'tconv']);
  assert.ok(loaded.keys.includes('tconv.lowrank_A') && !loaded.keys.includes('tconv.weight'));

  // Trained: the factors moved away from the compressed ones.
  const before = tensorHashes(f.factors);
  const afterFt = tensorHashes(result.output as string);
  assert.notEqual(afterFt['fc.lowrank_A'], before['fc.lowrank_A']);
  for (const [p, h] of Object.entries(inputHashes)) assert.equal(sha(p), h, `${p} must not change`);
});

test('Ctrl-C leaves a checkpoint and no output; --resume continues at the next epoch and ends where an uninterrupted run does', { skip, timeout: 180_000 }, async () => {
  const args = common('--epochs', '2', '--batch-size', '1', '--json');
  const out = join(dir, 'model.finetuned-2.pt'); // model.finetuned.pt exists from the first test
  const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const seen: WorkerMessage[] = [];
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (!line.startsWith('{')) return;
    const m = JSON.parse(line) as WorkerMessage;
    seen.push(m);
    if (m.type === 'checkpoint' && m.reason === 'epoch' && m.epochsDone === 1) child.kill('SIGINT');
  });
  const code = await new Promise<number | null>((done) => child.once('close', done));
  assert.equal(code, 130, stderr);
  const cancelled = seen.find((m) => m.type === 'checkpoint' && m.reason === 'cancel');
  assert.ok(cancelled && cancelled.type === 'checkpoint' && cancelled.epochsDone === 1, `cancelled in epoch 2: ${JSON.stringify(cancelled)}`);
  assert.ok(!existsSync(out), 'a cancelled run writes no model');
  assert.ok(existsSync(cancelled.path), 'the checkpoint is kept');
  assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.tmp')), [], 'no temp file left');

  const resumed = cli([...args, '--resume']);
  assert.equal(resumed.code, 0, resumed.err);
  const { messages, result } = events(resumed.out);
  const started = messages.find((m) => m.type === 'started');
  assert.ok(started && started.type === 'started');
  assert.deepEqual(started.resumedFrom, { epochsDone: 1, step: cancelled.step });
  assert.deepEqual([...new Set(messages.filter((m) => m.type === 'progress').map((m) => (m as { epoch: number }).epoch))], [2]);
  assert.deepEqual(messages.filter((m) => m.type === 'eval' && (m as { phase: string }).phase === 'epoch').map((m) => (m as { epoch: number }).epoch), [2], 'only epoch 2 is trained and validated');
  assert.equal(result.output, out);

  const straight = cli([...args, '-o', join(dir, 'straight.pt')]);
  assert.equal(straight.code, 0, straight.err);
  assert.deepEqual(tensorHashes(out), tensorHashes(join(dir, 'straight.pt')), 'cancel + resume = one uninterrupted run, bit for bit');
});

test('distillation from the dense checkpoint, only factors and biases training, written as safetensors that apply_factors loads alone', { skip }, () => {
  const out = join(dir, 'kd.safetensors');
  const options = ['--epochs', '2', '--batch-size', '32', '--lr', '1e-2', '--trainable', 'lowrank', '--json'];
  const r = cli(common(...options, '--distill', '--kd-alpha', '0.7', '-o', out));
  assert.equal(r.code, 0, r.err);
  const { messages, result } = events(r.out);
  type Summary = { teacher: boolean; params: { total: number; trainable: number }; epochs: { trainLoss: number }[]; bestEpoch: number };
  const summary = result.summary as Summary;
  assert.equal(summary.teacher, true);
  assert.ok(summary.bestEpoch >= 1, 'an epoch beat the compressed model, so trained weights were written');
  // The loss is not cross-entropy alone: the same run without the teacher trains differently.
  const labelsOnly = cli(common(...options, '-o', join(dir, 'labels-only.safetensors')));
  assert.equal(labelsOnly.code, 0, labelsOnly.err);
  const plain = events(labelsOnly.out).result.summary as Summary;
  assert.equal(plain.teacher, false);
  assert.notEqual(plain.epochs[0].trainLoss, summary.epochs[0].trainLoss);
  // Trainable: tconv/fc factors (2·(24·2 + 2·120) + 2·(48·2 + 2·24)) and the biases of stem, tconv, fc, head.
  assert.equal(summary.params.trainable, 2 * 24 + 2 * 120 + 48 * 2 + 2 * 24 + 24 + 24 + 48 + 6);
  const done = messages.find((m) => m.type === 'done')!;
  assert.ok(done.type === 'done' && done.probe);
  const loaded = reload(out, done.probe);
  assert.ok(loaded.maxAbsDiff <= 1e-5, `max |Δ| = ${loaded.maxAbsDiff}`);
  const dense = tensorHashes(f.model);
  const tuned = tensorHashes(out);
  assert.equal(tuned['stem.weight'], dense['stem.weight'], 'a frozen dense weight is written unchanged');
  assert.equal(tuned['head.weight'], dense['head.weight']);
  assert.notEqual(tuned['head.bias'], dense['head.bias'], 'biases train');
});

/** Runs a failing command: exit 2, exactly one `rankscope finetune:` line, no traceback, nothing written. */
function refused(args: string[], message: RegExp): void {
  const before = readdirSync(dir).sort();
  const r = cli(args);
  const lines = r.err.split('\n').filter((l) => l.startsWith('rankscope finetune:'));
  assert.equal(r.code, 2, `exit 2 for ${args.join(' ')}: ${r.err}`);
  assert.equal(lines.length, 1, r.err);
  assert.match(lines[0], message);
  assert.doesNotMatch(r.err, /Traceback|at .*\.ts:\d+/);
  assert.deepEqual(readdirSync(dir).sort().filter((n) => !n.startsWith('.')), before.filter((n) => !n.startsWith('.')), 'nothing written');
}

test('factory errors, state dicts and factors that do not fit: exit 2 with one line naming the problem', { skip, timeout: 180_000 }, () => {
  const base = common('--epochs', '1');
  const withFactory = (factory: string, ...extra: string[]) => base.map((a) => (a === 'skel.models:build' ? factory : a)).concat(extra);
  refused(withFactory('skel.nope:build'), /cannot import the factory module 'skel\.nope': no module 'skel\.nope' in .*factory/);
  refused(withFactory('skel.models:missing'), /'skel\.models' .* has no 'missing'.*build/);
  refused(withFactory('skel.models:NOT_CALLABLE'), /'skel\.models:NOT_CALLABLE' is a int, not a function or class/);
  refused(withFactory('skel.models:not_a_module'), /skel\.models:not_a_module returned a dict, not a torch\.nn\.Module/);
  refused(withFactory('skel.models:fails'), /skel\.models:fails raised ValueError: this variant is not built here \(models\.py:\d+\)/);
  refused(withFactory('skel.models:build', '--factory-args', '{"extra": true}'), /keys do not match .*missing in the checkpoint: extra\.weight, extra\.bias/);
  refused(withFactory('skel.models:build', '--factory-args', '{"classes": 5}'), /checkpoint does not fit .*size mismatch for head\.weight/);
  refused(withFactory('skel.models:build', '--factory-args', '{"custom_fc": true}'), /factors in model\.lowrank\.safetensors do not fit .*'fc' is a CustomLinear/);
});

test('refused before the worker starts: factors of another checkpoint, outputs over an input or of the wrong kind, missing or malformed options', { skip }, () => {
  const base = common('--epochs', '1');
  refused(base.map((a) => (a === f.factors ? f.otherFactors : a)), /factors in other\.lowrank\.safetensors were not made from model\.pt: layer '(tconv|fc)' has different weights/);
  refused([...base, '-o', f.model], /is the input model.*never overwrites/);
  refused([...base, '-o', f.factors], /is the input model.*never overwrites/);
  refused([...base, '-o', join(dir, 'x.onnx')], /must end in \.pt, \.pth, \.bin or \.safetensors/);
  refused(base.filter((a, i) => a !== '--factory' && base[i - 1] !== '--factory'), /needs --factory MOD:FN/);
  refused(base.filter((a, i) => a !== '--factors' && base[i - 1] !== '--factors'), /needs --factors FILE/);
  refused(base.map((a) => (a === 'skel.models:build' ? 'skel.models' : a)), /not of the form package\.module:function/);
  refused([...base, '--factory-args', '[1]'], /--factory-args must be a JSON object/);
  refused([...base, '--teacher', f.model], /use --distill instead of --teacher/);
  refused(['finetune', f.factors, '--factors', f.factors, '--factory', 'skel.models:build', '--data', f.data], /model\.lowrank\.safetensors is a factors file, not the checkpoint/);
  for (const [p, h] of Object.entries(inputHashes)) assert.equal(sha(p), h, `${p} must not change`);
});

test('--nproc 2: the module trains under torchrun (DDP, gloo) with distillation; the state dict written by rank 0 reloads and matches', { skip, timeout: 180_000 }, () => {
  const out = join(dir, 'ddp.finetuned.pt');
  const r = cli(common('--epochs', '1', '--batch-size', '16', '--distill', '--nproc', '2', '--json', '-o', out));
  assert.equal(r.code, 0, r.err);
  const { messages, result } = events(r.out);
  const started = messages.find((m) => m.type === 'started');
  assert.ok(started?.type === 'started');
  assert.deepEqual(started.processes, { worldSize: 2, backend: 'gloo', globalBatch: 16, perProcessBatch: 8 });
  assert.equal(messages.filter((m) => m.type === 'hello').length, 1, 'rank 0 alone speaks');
  assert.equal((result.summary as { teacher: boolean }).teacher, true);
  const done = messages.find((m) => m.type === 'done')!;
  assert.ok(done.type === 'done' && done.probe);
  assert.ok(reload(out, done.probe).maxAbsDiff <= 1e-5);
});

test('--nproc 2 where rank 1 alone fails: one line naming rank 1 and its error (not rank 0\'s lost peer), no output', { skip, timeout: 180_000 }, () => {
  const out = join(dir, 'rank1.finetuned.pt');
  const args = common('--epochs', '1', '--batch-size', '16', '--nproc', '2', '-o', out);
  args[args.indexOf('skel.models:build')] = 'skel.models:build_failing_on_rank_1';
  const r = cli(args);
  assert.equal(r.code, 2);
  const ours = r.err.split('\n').filter((l) => l.startsWith('rankscope finetune:'));
  assert.equal(ours.length, 1, r.err.slice(-3000));
  assert.match(ours[0], /rank 1 of 2 failed: .*rank 1's forward is broken on purpose.*\[SHAPE_MISMATCH\]\. The other processes were stopped; no model was written\./);
  assert.doesNotMatch(ours[0], /Connection closed by peer/);
  assert.equal(existsSync(out), false);
});
