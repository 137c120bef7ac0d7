// Hostile input, made here (issue 12): truncations, random bytes, seeded bit flips of valid files and
// crafted structural faults, for ONNX and npz, run through the real CLI (dist/cli.js) as a user would.
// Every run must end in exit 0 with a sane result or exit 2 with one line on stderr, within a time
// bound, never a stack trace, never a partial output file, never a changed input.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { writeMlpFixture } from '../eval/fixtures';
import { craftBrokenModels, craftBrokenNpz, type Expect } from './crafted';

const ROOT = join(__dirname, '../../..');
const CLI = join(ROOT, 'dist/cli.js');
/** Far above any honest run on these tiny files; a run past it is a hang. */
const TIME_BOUND_MS = 30_000;

type Outcome = 'clean error' | 'correct success' | 'other';
interface Run { file: string; args: string[]; outcome: Outcome; why?: string }
/** A corpus entry: generated faults may read fine (a flipped bit inside a weight); crafted ones say. */
interface Entry { path: string; expect: Expect }

let dir: string;
const runs: Run[] = [];

before(() => {
  // The corpus runs the bundled CLI, exactly what users run; build it when a test run starts cold.
  if (!existsSync(CLI)) {
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts/build.mjs')], { stdio: 'ignore' });
    assert.equal(r.status, 0, 'build failed');
  }
  dir = mkdtempSync(join(tmpdir(), 'rankscope-corpus-'));
  writeMlpFixture(dir);
});

after(() => {
  const tally = { 'clean error': 0, 'correct success': 0, other: 0 };
  for (const r of runs) tally[r.outcome]++;
  console.log(`malformed-input corpus: ${runs.length} runs: ${tally['clean error']} clean error, ${tally['correct success']} correct success, ${tally.other} other`);
  rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Making the corpus

/** xorshift32: the corpus is the same on every machine and every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 2 ** 32;
  };
}

/** Truncations at `count` lengths spread over the file, plus the first few bytes. */
function truncations(bytes: Buffer, count: number): Buffer[] {
  const lengths = new Set([0, 1, 2, 3, 7, 16]);
  for (let i = 1; i < count; i++) lengths.add(Math.floor((bytes.length * i) / count));
  lengths.add(bytes.length - 1);
  return [...lengths].map((n) => bytes.subarray(0, n));
}

function bitFlips(bytes: Buffer, count: number, seed: number): Buffer[] {
  const next = rng(seed);
  return Array.from({ length: count }, () => {
    const copy = Buffer.from(bytes);
    const flips = 1 + Math.floor(next() * 4);
    for (let f = 0; f < flips; f++) copy[Math.floor(next() * copy.length)] ^= 1 << Math.floor(next() * 8);
    return copy;
  });
}

function randomFiles(count: number, seed: number): Buffer[] {
  const next = rng(seed);
  return Array.from({ length: count }, () => Buffer.from(Array.from({ length: 1 + Math.floor(next() * 4096) }, () => Math.floor(next() * 256))));
}

function writeCorpus(sub: string, ext: string, files: Buffer[]): Entry[] {
  const d = join(dir, sub);
  mkdirSync(d, { recursive: true });
  return files.map((b, i) => {
    const path = join(d, `${String(i).padStart(4, '0')}${ext}`);
    writeFileSync(path, b);
    return { path, expect: 'either' };
  });
}

// ---------------------------------------------------------------------------------------------
// Running and judging

const sha = (p: string) => (existsSync(p) ? createHash('sha256').update(readFileSync(p)).digest('hex') : 'absent');

function cli(args: string[]): Promise<{ code: number | null; signal: string | null; out: string; err: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const env = { ...process.env, RANKSCOPE_CACHE_DIR: join(dir, 'cache') };
    execFile(process.execPath, [CLI, ...args], { env, timeout: TIME_BOUND_MS, killSignal: 'SIGKILL', maxBuffer: 1 << 28, encoding: 'utf8' },
      (error, out, err) => {
        const e = error as (NodeJS.ErrnoException & { code?: number | string; signal?: string }) | null;
        resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, signal: e?.signal ?? null, out, err, ms: Date.now() - t0 });
      });
  });
}

/** A clean user error: exit 2, exactly one line on stderr, no stack frame. */
function cleanError(r: { code: number | null; err: string }): string | undefined {
  if (r.code !== 2) return `exit ${r.code}`;
  const lines = r.err.split('\n').filter((l) => l.trim() !== '');
  if (lines.length !== 1) return `${lines.length} stderr lines: ${r.err.slice(0, 300)}`;
  if (/\n\s+at |\bat .*\.(js|ts):\d+/.test(r.err)) return 'stack trace on stderr';
  return undefined;
}

/**
 * Runs one CLI command on a corpus file and judges it; `success` checks an exit-0 result.
 * `inputs` are checksummed before and after; `outputDir` must hold no partial file afterwards.
 */
async function judge(entry: Entry, args: string[], inputs: string[], success: (out: string) => Promise<string | undefined>, outputDir?: string): Promise<Run> {
  const file = entry.path;
  const before = inputs.map(sha);
  const listing = outputDir ? readdirSync(outputDir).sort() : [];
  const r = await cli(args);
  let outcome: Outcome;
  let why: string | undefined;
  if (r.code === 0) {
    why = await success(r.out);
    outcome = why ? 'other' : 'correct success';
  } else {
    why = r.signal ? `killed by ${r.signal} after ${r.ms} ms (hang?)` : cleanError(r);
    outcome = why ? 'other' : 'clean error';
  }
  if (entry.expect === 'error' && outcome === 'correct success') { outcome = 'other'; why = 'accepted a file that must be refused'; }
  if (entry.expect === 'success' && outcome === 'clean error') { outcome = 'other'; why = `refused a valid file: ${r.err.trim()}`; }
  const changed = inputs.filter((p, i) => sha(p) !== before[i]);
  if (changed.length) { outcome = 'other'; why = `input changed: ${changed.join(', ')}`; }
  if (outputDir && r.code !== 0) {
    const left = readdirSync(outputDir).sort().filter((n) => !listing.includes(n));
    if (left.length) { outcome = 'other'; why = `left behind after a failure: ${left.join(', ')}`; }
  }
  const run = { file, args, outcome, why };
  runs.push(run);
  return run;
}

/** Runs `jobs` two at a time (two cores), returning the runs that were not a clean outcome. */
async function pool(jobs: (() => Promise<Run>)[]): Promise<Run[]> {
  const bad: Run[] = [];
  let next = 0;
  await Promise.all([0, 1].map(async () => {
    while (next < jobs.length) {
      const r = await jobs[next++]();
      if (r.outcome === 'other') bad.push(r);
    }
  }));
  return bad;
}

const show = (bad: Run[]) => bad.slice(0, 12).map((r) => `${r.args.join(' ')}\n    → ${r.why}`).join('\n');

/** inspect --json (rankscope.inspect/1): finite totals, whole counts, no layer larger than its shape. */
async function sensibleInventory(out: string): Promise<string | undefined> {
  let j: { schema?: string; model?: { totalParams?: number }; layers?: { params: number; shape: number[]; compressed?: unknown }[] };
  try { j = JSON.parse(out); } catch { return 'stdout is not JSON'; }
  if (j.schema !== 'rankscope.inspect/1' || !j.model || !Array.isArray(j.layers)) return 'not a rankscope.inspect/1 document';
  const total = j.model.totalParams;
  if (!Number.isSafeInteger(total) || total! < 0) return `total parameters ${total}`;
  for (const l of j.layers) {
    if (!Number.isSafeInteger(l.params) || l.params < 0) return `layer params ${l.params}`;
    if (!l.compressed && l.params > l.shape.reduce((a, b) => a * b, 1)) return `layer params ${l.params} exceed its shape ${l.shape.join('×')}`;
  }
  return undefined;
}

/** A written model must load in ONNX Runtime. */
async function loadsInOrt(path: string): Promise<string | undefined> {
  if (!existsSync(path)) return 'exit 0 but no output file';
  try {
    const s = await ort.InferenceSession.create(path);
    await s.release();
    return undefined;
  } catch (e) {
    return `written model rejected by ONNX Runtime: ${(e as Error).message.slice(0, 200)}`;
  }
}

// ---------------------------------------------------------------------------------------------

test('malformed ONNX models: inspect, spectra, compress and eval end cleanly', { timeout: 20 * 60_000 }, async () => {
  const valid = readFileSync(join(dir, 'mlp.onnx'));
  const files: Entry[] = [
    // The control: the valid file itself must succeed under every command, or the judge is broken.
    { path: join(dir, 'mlp.onnx'), expect: 'success' },
    ...writeCorpus('onnx-trunc', '.onnx', truncations(valid, 40)),
    ...writeCorpus('onnx-random', '.onnx', randomFiles(20, 7)),
    ...writeCorpus('onnx-flip', '.onnx', bitFlips(valid, 200, 11)),
    ...craftBrokenModels(join(dir, 'onnx-crafted')),
  ];
  const data = join(dir, 'data.npz');
  const outDir = join(dir, 'out');
  mkdirSync(outDir);
  const control = await cli(['inspect', join(dir, 'mlp.onnx'), '--json']);
  const layer = (JSON.parse(control.out) as { layers: { name: string }[] }).layers[1].name;
  const jobs: (() => Promise<Run>)[] = [];
  files.forEach((entry, i) => {
    const f = entry.path;
    if (i % 3 === 0) {
      jobs.push(() => judge(entry, ['spectrum', f, '--layer', layer, '--json', '--no-cache'], [f], async (out) => {
        try {
          const sv = (JSON.parse(out) as { singularValues: number[] }).singularValues;
          return sv.every((v, k) => Number.isFinite(v) && v >= 0 && (k === 0 || v <= sv[k - 1])) ? undefined : 'singular values not finite, non-negative and sorted';
        } catch { return 'stdout is not JSON'; }
      }));
    }
    jobs.push(() => judge(entry, ['inspect', f, '--json', '--spectra'], [f], sensibleInventory));
    if (i % 2 === 0) {
      const out = join(outDir, `c${i}.onnx`);
      jobs.push(() => judge(entry, ['compress', f, '-o', out, '--rank', '2', '--no-cache'], [f], () => loadsInOrt(out), outDir));
    }
    if (i % 4 === 0) {
      jobs.push(() => judge(entry, ['eval', f, '--data', data, '--input', 'x=x', '--labels', 'y', '--runs', '0', '--json'], [f, data], async (out) => {
        try { JSON.parse(out); return undefined; } catch { return 'stdout is not JSON'; }
      }));
    }
  });
  const bad = await pool(jobs);
  assert.equal(bad.length, 0, `${bad.length} of ${jobs.length} runs were neither a clean error nor a correct success:\n${show(bad)}`);
});

test('malformed npz data: eval ends cleanly', { timeout: 10 * 60_000 }, async () => {
  const valid = readFileSync(join(dir, 'data.npz'));
  const model = join(dir, 'mlp.onnx');
  const files: Entry[] = [
    { path: join(dir, 'data.npz'), expect: 'success' },
    ...writeCorpus('npz-trunc', '.npz', truncations(valid, 30)),
    ...writeCorpus('npz-random', '.npz', randomFiles(10, 13)),
    ...writeCorpus('npz-flip', '.npz', bitFlips(valid, 80, 17)),
    ...craftBrokenNpz(join(dir, 'npz-crafted')),
  ];
  const jobs = files.map((entry) => () => judge(entry, ['eval', model, '--data', entry.path, '--input', 'x=x', '--labels', 'y', '--runs', '0', '--json'], [entry.path, model], async (out) => {
    // A flip inside the stored arrays can leave a file that reads; its accuracy must still be a fraction.
    try {
      const j = JSON.parse(out) as { metrics?: { top1?: number } };
      const top1 = j.metrics?.top1;
      return top1 === undefined || (top1 >= 0 && top1 <= 1) ? undefined : `top1 ${top1}`;
    } catch { return 'stdout is not JSON'; }
  }));
  const bad = await pool(jobs);
  assert.equal(bad.length, 0, `${bad.length} of ${jobs.length} runs were neither a clean error nor a correct success:\n${show(bad)}`);
});

test('out-of-range fine-tuning options are refused before any work', { timeout: 5 * 60_000 }, async () => {
  const model = join(dir, 'mlp.onnx');
  const data = join(dir, 'data.npz');
  const bad = [
    ['--epochs', '0'], ['--epochs', '-3'], ['--epochs', '2.5'], ['--lr', '0'], ['--lr', 'nan'], ['--lr', '-1'],
    ['--batch-size', '0'], ['--kd-alpha', '2'], ['--kd-alpha', '-0.1'], ['--kd-temperature', '0'], ['--momentum', '5'],
    ['--weight-decay', '-1'], ['--grad-clip', '-1'], ['--warmup', '-1'], ['--gamma', '0'], ['--optimizer', 'adam9'],
    ['--schedule', 'zigzag'], ['--device', 'tpu'], ['--amp', 'fp8'], ['--frames', '0'], ['--no-such-option'], ['--val-fraction', '0'], ['--val-fraction', '0.9'],
  ];
  const jobs = bad.map((opt) => () => judge({ path: model, expect: 'error' }, ['finetune', model, '--data', data, ...opt], [model, data], async () => 'accepted'));
  const failures = await pool(jobs);
  assert.equal(failures.length, 0, `options not refused cleanly:\n${show(failures)}`);
  assert.ok(!readdirSync(dir).some((n) => n.includes('finetuned')), 'nothing was written');
});

test('the judge itself tells a clean error from a stack trace and a hang', () => {
  assert.equal(cleanError({ code: 2, err: 'rankscope inspect: x.onnx: not an ONNX model\n' }), undefined);
  assert.ok(cleanError({ code: 1, err: 'rankscope inspect: internal error: boom\n' }));
  assert.ok(cleanError({ code: 2, err: 'Error: boom\n    at foo (/x/y.js:1:2)\n' }));
  assert.ok(cleanError({ code: 2, err: 'one\ntwo\n' }));
  assert.ok(cleanError({ code: null, err: '' }));
});
