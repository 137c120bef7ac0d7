// Fine-tuning on several processes (torchrun + DDP on CPU, gloo; docs/worker.md), through
// finetune() and the real worker: a 2-process run (distilling) cancelled mid-epoch stops every process by itself
// (torchrun exits cleanly, nothing left in the process group) and resumes on 1 process to the
// weights of an uninterrupted 1-process run; killing rank 1 gives one error naming rank 1 and no
// model; and the launch arguments, checks and failure reading on their own. The 1-vs-2 equality
// itself (max |Δw| ≤ 1e-5, and why) is test/python/test_distributed.py.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RankscopeError } from '../../../src/core/errors';
import {
  checkProcesses, parseGpus, parseRankFailure, parseTorchrunFailures, rankFailureError, workerArgv,
} from '../../../src/worker/distributed';
import { finetune, type FinetuneRequest } from '../../../src/worker/finetune';
import type { WorkerMessage } from '../../../src/worker/protocol';
import { readSafetensors } from '../../../src/worker/safetensors';
import { pythonHas, runPython, testPython } from '../../helpers/python';

const hasTorch = pythonHas('torch', 'numpy', 'onnx');
const skip = !hasTorch && 'needs torch + onnx in the test Python';
const dir = mkdtempSync(join(tmpdir(), 'rankscope-ddp-'));
const fixture = { compressed: join(dir, 'compressed.onnx'), original: join(dir, 'original.onnx'), data: join(dir, 'data.npz') };

function request(extra: Partial<FinetuneRequest>): FinetuneRequest {
  return {
    model: fixture.compressed, data: { path: fixture.data }, ...extra,
    training: { epochs: 1, lr: 3e-3, seed: 1, batchSize: 16, progressEvery: 0, device: 'cpu', ...extra.training },
    worker: { python: testPython(), env: { RANKSCOPE_DIST_TIMEOUT_S: '60' }, ...extra.worker },
  };
}

/** torchrun's ranks: the agent's children (torch 2.x puts each in a session of its own, so not the group). */
function children(pid: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' }).split('\n').map((s) => Number(s.trim())).filter((n) => n > 0);
  } catch {
    return [];
  }
}

/** True while `pid` runs (a zombie counts as gone). */
function running(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(')').pop()!.trim()[0] !== 'Z';
  } catch {
    return false;
  }
}

/** The rank of a worker process under torchrun, from its environment. */
function rankOf(pid: number): number | undefined {
  try {
    const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    const rank = env.find((e) => e.startsWith('RANK='));
    return rank && env.some((e) => e.startsWith('LOCAL_RANK=')) ? Number(rank.slice(5)) : undefined;
  } catch {
    return undefined;
  }
}

before(() => {
  if (!hasTorch) return;
  runPython(`import sys; sys.path.insert(0, 'test/python'); import fixtures; fixtures.build(sys.argv[1], 2)`, [dir]);
});

test('cancel stops every process by itself; the checkpoint resumes on 1 process to the weights of an uninterrupted 1-process run (distilling from the original)', { skip, timeout: 240_000 }, async () => {
  const workDir = join(dir, 'cancel-work');
  const out = join(dir, 'cancel.onnx');
  const controller = new AbortController();
  const stderr: string[] = [];
  let agent: number | undefined;
  let ranks: number[] = [];
  let started: WorkerMessage | undefined;
  let checkpoint: WorkerMessage | undefined;
  const first = await finetune(request({ out, workDir, teacher: fixture.original, worker: { nproc: 2 } }), {
    signal: controller.signal,
    onWorker: (w) => { agent = w.pid; },
    onStderr: (l) => stderr.push(l),
    onMessage: (m) => {
      if (m.type === 'started') { started = m; ranks = children(agent!); }
      if (m.type === 'progress' && m.step >= 20 && !controller.signal.aborted) controller.abort();
      if (m.type === 'checkpoint') checkpoint = m;
    },
  });
  assert.equal(first.status, 'cancelled');
  assert.ok(started?.type === 'started');
  assert.deepEqual(started.processes, { worldSize: 2, backend: 'gloo', globalBatch: 16, perProcessBatch: 8 });
  assert.ok(checkpoint?.type === 'checkpoint' && checkpoint.reason === 'cancel' && checkpoint.step >= 20 && checkpoint.step < started.stepsPerEpoch);
  // Every rank stopped at the agreed step and exited 0: torchrun reports no failed rank.
  assert.ok(!stderr.some((l) => /ChildFailedError|exitcode\s*:/.test(l)), stderr.slice(-20).join('\n'));
  assert.equal(ranks.length, 2);
  assert.deepEqual(ranks.filter(running), [], 'no rank is left');
  assert.equal(existsSync(out), false, 'no model written on cancel');

  let resumedFrom: unknown;
  const second = await finetune(request({ out, workDir, resume: true, teacher: fixture.original, worker: { nproc: 1 } }), {
    onMessage: (m) => { if (m.type === 'started') resumedFrom = m.resumedFrom; },
  });
  assert.equal(second.status, 'completed');
  assert.equal(second.summary.teacher, true);
  assert.deepEqual(resumedFrom, { epochsDone: 0, step: checkpoint.step });
  assert.ok(existsSync(out));

  const straight = await finetune(request({ out: join(dir, 'straight.onnx'), workDir: join(dir, 'straight-work'), teacher: fixture.original }));
  assert.equal(straight.status, 'completed');
  const ckpt = (w: string) => runPython(`import sys, torch, json
c = torch.load(sys.argv[1], map_location='cpu')
print(json.dumps({k: v.flatten().tolist() for k, v in c['weights'].items()}))`, [join(w, 'checkpoint.pt')]);
  const a = JSON.parse(ckpt(workDir)) as Record<string, number[]>;
  const b = JSON.parse(ckpt(join(dir, 'straight-work'))) as Record<string, number[]>;
  let maxDiff = 0;
  for (const [name, values] of Object.entries(b)) values.forEach((v, i) => { maxDiff = Math.max(maxDiff, Math.abs(v - a[name][i])); });
  // The same tolerance as test_distributed.py: only the order of the float32 sums differs.
  assert.ok(maxDiff <= 1e-5, `max |Δw| after resume on another process count = ${maxDiff}`);
  assert.equal(second.summary.valAccuracyBest, straight.summary.valAccuracyBest);
  assert.ok(Object.keys(b).length > 0 && (await readSafetensors(join(workDir, 'best.safetensors'))).size > 0);
});

test('killing rank 1 ends the run with one error naming rank 1 and the signal, and no model is written', { skip, timeout: 120_000 }, async () => {
  const out = join(dir, 'killed.onnx');
  let agent: number | undefined;
  let ranks: number[] = [];
  let killed = false;
  await assert.rejects(
    finetune(request({ out, training: { epochs: 3, batchSize: 4 }, worker: { nproc: 2 } }), {
      onWorker: (w) => { agent = w.pid; },
      onMessage: (m) => {
        if (m.type !== 'progress' || killed || !agent) return;
        ranks = children(agent);
        const rank1 = ranks.find((pid) => rankOf(pid) === 1);
        if (rank1) { process.kill(rank1, 'SIGKILL'); killed = true; }
      },
    }),
    (e: unknown) => e instanceof RankscopeError && e.code === 'WORKER' && /rank 1 of 2 was killed by (SIGKILL|signal 9)/.test(e.message)
      && /no model was written/.test(e.message) && /--resume/.test(e.hint ?? ''),
  );
  assert.ok(killed);
  assert.equal(existsSync(out), false);
  assert.deepEqual(ranks.filter(running), [], 'no rank is left');
});

// torch 1.13's summary when rank 1 exited 3 and rank 0 then lost its peer (captured).
const SUMMARY = `torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
============================================================
t.py FAILED
------------------------------------------------------------
Failures:
[1]:
  time      : 2026-12-01_12:10:01
  host      : localhost
  rank      : 1 (local_rank: 1)
  exitcode  : -9 (pid: 23552)
  error_file: <N/A>
  traceback : Signal 9 (SIGKILL) received by PID 23552
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-12-01_12:10:01
  host      : localhost
  rank      : 0 (local_rank: 0)
  exitcode  : 1 (pid: 23551)
  error_file: <N/A>
  traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html
============================================================`.split('\n');

test('failures: a rank\'s own error is the cause, not the peers\' echoes; else the rank torchrun saw killed', () => {
  assert.deepEqual(parseTorchrunFailures(SUMMARY), [{ rank: 1, exitCode: -9, signal: 'SIGKILL' }, { rank: 0, exitCode: 1 }]);
  const echo = parseRankFailure('RANKSCOPE_RANK_ERROR {"rank": 0, "world": 2, "code": "PEER", "message": "Connection closed by peer", "hint": null}')!;
  const oom = parseRankFailure('[worker] RANKSCOPE_RANK_ERROR {"rank": 1, "world": 2, "code": "OOM", "message": "CUDA out of memory", "hint": null}')!;
  assert.equal(parseRankFailure('rank 1 said hello'), undefined);
  const byOom = rankFailureError([echo, oom], parseTorchrunFailures(SUMMARY), 2)!;
  assert.match(byOom.message, /rank 1 of 2 failed: CUDA out of memory \[OOM\]\. The other processes were stopped; no model was written\./);
  assert.match(byOom.hint!, /--batch-size/);
  const bySignal = rankFailureError([echo], parseTorchrunFailures(SUMMARY), 2)!;
  assert.match(bySignal.message, /rank 1 of 2 was killed by SIGKILL/);
  // torchrun's own SIGTERM of the survivors is never the cause.
  const terminated = parseTorchrunFailures(['  rank      : 0 (local_rank: 0)', '  exitcode  : -15 (pid: 1)', '  rank      : 1 (local_rank: 1)', '  exitcode  : 2 (pid: 2)']);
  assert.match(rankFailureError([], terminated, 2)!.message, /rank 1 of 2 exited with code 2/);
  assert.equal(rankFailureError([], [], 2), undefined);
  // Rank 1 stopped answering: rank 0's collective timed out, then torchrun killed rank 1.
  const waited = parseRankFailure('RANKSCOPE_RANK_ERROR {"rank": 0, "world": 2, "code": "PEER", "message": "[../third_party/gloo/gloo/transport/tcp/unbound_buffer.cc:81] Timed out waiting 3000ms for recv operation to complete", "hint": null}')!;
  const hung = rankFailureError([waited], parseTorchrunFailures(SUMMARY), 2)!;
  assert.match(hung.message, /rank 1 of 2 stopped answering: rank 0 waited for it until the timeout/);
  assert.match(hung.hint!, /RANKSCOPE_DIST_TIMEOUT_S/);
});

test('launch: the plain worker for 1 process; torchrun on a free port (c10d, 127.0.0.1:0) with its own run id otherwise', () => {
  assert.deepEqual(workerArgv({}), ['-u', '-m', 'rankscope_worker']);
  assert.deepEqual(workerArgv({ nproc: 1 }, ['--hello']), ['-u', '-m', 'rankscope_worker', '--hello']);
  const a = workerArgv({ nproc: 2 });
  const b = workerArgv({ gpus: [3] });
  assert.ok(a.includes('--nproc_per_node=2') && a.includes('--rdzv_endpoint=127.0.0.1:0') && a.includes('--max_restarts=0'));
  assert.deepEqual(a.slice(-2), ['-m', 'rankscope_worker']);
  assert.ok(b.includes('--nproc_per_node=1'), 'chosen GPUs run under torchrun, one process each');
  assert.notEqual(a.find((x) => x.startsWith('--rdzv_id')), workerArgv({ nproc: 2 }).find((x) => x.startsWith('--rdzv_id')));
});

test('checks before anything starts: the global batch divides over the processes, GPUs fit the device, --nproc matches --gpus', () => {
  const bad = (o: Parameters<typeof checkProcesses>[0], device: string, batchSize: number, re: RegExp) =>
    assert.throws(() => checkProcesses(o, { device, batchSize }), (e: unknown) => e instanceof RankscopeError && e.code === 'BAD_ARGUMENT' && re.test(e.message));
  checkProcesses({ nproc: 4 }, { device: 'cpu', batchSize: 64 });
  checkProcesses({ gpus: [0, 1] }, { device: 'auto', batchSize: 64 });
  bad({ nproc: 3 }, 'cpu', 64, /--batch-size 64 is the global batch: it must divide evenly over 3 processes/);
  bad({ nproc: 0 }, 'cpu', 64, /--nproc must be an integer/);
  bad({ nproc: 2, gpus: [0, 1, 2] }, 'auto', 60, /one process runs on each GPU/);
  bad({ gpus: [0] }, 'cpu', 64, /--gpus with --device cpu/);
  bad({ nproc: 2 }, 'cuda:1', 64, /--device cuda:1 picks one GPU/);
  bad({ nproc: 2 }, 'mps', 64, /not on mps/);
  assert.deepEqual(parseGpus('0, 2'), [0, 2]);
  assert.throws(() => parseGpus('0,0'), /distinct/);
  assert.throws(() => parseGpus('a'), /distinct/);
});
