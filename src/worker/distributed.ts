// Fine-tuning on several processes (docs/worker.md): how the worker starts under torchrun, the
// checks before it does, and the one error a failed rank becomes. The launch itself stays in
// client.ts (FinetuneWorker.launch); this file only says what to run and how to read the failures.
//
// The rendezvous is c10d on 127.0.0.1 port 0: the OS picks a free port for every run, so two runs
// never meet (torch 1.13's --standalone would take the fixed port 29400); --max_restarts 0 ends the
// run when a rank dies (torchrun stops the others), and every collective in the worker has a
// timeout ($RANKSCOPE_DIST_TIMEOUT_S), so a silent rank cannot hang the run forever.
import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { RankscopeError } from '../core/errors';
import type { ProcessesInfo, TrainingOptions } from './protocol';

/** How many worker processes, on which GPUs. */
export interface ProcessesOptions {
  /** Processes (ranks); default 1, or the number of `gpus`. */
  nproc?: number;
  /** CUDA device indices, one process each (CUDA_VISIBLE_DEVICES). */
  gpus?: number[];
}

/** The number of processes the options ask for (1 = the plain worker, no torchrun). */
export function processCount(o: ProcessesOptions): number {
  return o.nproc ?? o.gpus?.length ?? 1;
}

/** True when the worker starts under torchrun: several processes, or GPUs chosen. */
export function usesTorchrun(o: ProcessesOptions): boolean {
  return processCount(o) > 1 || (o.gpus?.length ?? 0) > 0;
}

/** `--gpus 0,1` → [0, 1]; BAD_ARGUMENT for anything but distinct indices ≥ 0. */
export function parseGpus(text: string): number[] {
  const gpus = text.split(',').map((s) => s.trim());
  if (!gpus.every((g) => /^\d+$/.test(g)) || new Set(gpus).size !== gpus.length) {
    throw new RankscopeError('BAD_ARGUMENT', `--gpus must list distinct CUDA device indices, e.g. --gpus 0,1; got '${text}'.`);
  }
  return gpus.map(Number);
}

/** Checked before anything starts: counts, the batch dividing over the processes, a device that fits. */
export function checkProcesses(o: ProcessesOptions, training: Pick<TrainingOptions, 'batchSize' | 'device'>): void {
  const n = processCount(o);
  if (!Number.isInteger(n) || n < 1 || n > 64) {
    throw new RankscopeError('BAD_ARGUMENT', `--nproc must be an integer in [1, 64], the number of worker processes; got ${o.nproc}.`);
  }
  if (o.gpus) {
    if (o.gpus.length === 0 || !o.gpus.every((g) => Number.isInteger(g) && g >= 0) || new Set(o.gpus).size !== o.gpus.length) {
      throw new RankscopeError('BAD_ARGUMENT', `--gpus must list distinct CUDA device indices, e.g. --gpus 0,1; got ${o.gpus.join(',')}.`);
    }
    if (o.nproc !== undefined && o.nproc !== o.gpus.length) {
      throw new RankscopeError('BAD_ARGUMENT', `--nproc ${o.nproc} with --gpus ${o.gpus.join(',')}: one process runs on each GPU.`, `Leave out --nproc, or give ${o.nproc} GPUs.`);
    }
    if (training.device === 'cpu' || training.device === 'mps') {
      throw new RankscopeError('BAD_ARGUMENT', `--gpus with --device ${training.device}: the GPUs would not be used.`, 'Use --device auto or cuda with --gpus.');
    }
  }
  if (usesTorchrun(o) && training.device === 'mps') {
    throw new RankscopeError('BAD_ARGUMENT', 'Several processes train on CUDA GPUs or the CPU, not on mps.', 'Use --device cpu, or one process.');
  }
  if (usesTorchrun(o) && /^cuda:\d+$/.test(training.device)) {
    throw new RankscopeError('BAD_ARGUMENT', `--device ${training.device} picks one GPU; with several processes each takes its own.`, 'Use --device auto or cuda, and choose the GPUs with --gpus.');
  }
  if (training.batchSize % n !== 0) {
    throw new RankscopeError('BAD_ARGUMENT', `--batch-size ${training.batchSize} is the global batch: it must divide evenly over ${n} processes.`,
      `Use a multiple of ${n}, e.g. --batch-size ${Math.max(n, Math.round(training.batchSize / n) * n)}.`);
  }
}

/** The interpreter's arguments: the plain worker, or torchrun starting it on every rank. */
export function workerArgv(o: ProcessesOptions, args: string[] = []): string[] {
  if (!usesTorchrun(o)) return ['-u', '-m', 'rankscope_worker', ...args];
  return ['-u', '-m', 'rankscope_worker.torchrun', '--nnodes=1', `--nproc_per_node=${processCount(o)}`,
    '--rdzv_backend=c10d', '--rdzv_endpoint=127.0.0.1:0', `--rdzv_id=rankscope-${randomUUID()}`,
    '--max_restarts=0', '--monitor_interval=1', '-m', 'rankscope_worker', ...args];
}

/** Environment for the processes: the chosen GPUs; under torchrun the CPU threads shared out (unless set). */
export function processesEnv(o: ProcessesOptions, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = o.gpus ? { CUDA_VISIBLE_DEVICES: o.gpus.join(',') } : {};
  if (usesTorchrun(o) && !env.OMP_NUM_THREADS) out.OMP_NUM_THREADS = String(Math.max(1, Math.floor(availableParallelism() / processCount(o))));
  return out;
}

/** " × 2 processes (gloo), global batch 64 = 2 × 32" (after the device), or nothing for one plain process. */
export function describeProcesses(p: ProcessesInfo | undefined): string {
  if (!p || !p.backend) return '';
  return ` × ${p.worldSize} process${p.worldSize === 1 ? '' : 'es'} (${p.backend}), global batch ${p.globalBatch} = ${p.worldSize} × ${p.perProcessBatch}`;
}

/** What a rank said when it failed (rankscope_worker/distributed.py `report_failure`). */
export interface RankFailure { rank: number; world: number; code: string; message: string; hint: string | null }

const RANK_ERROR = 'RANKSCOPE_RANK_ERROR ';

/** A RANKSCOPE_RANK_ERROR line's failure, or undefined for any other line. */
export function parseRankFailure(line: string): RankFailure | undefined {
  const at = line.indexOf(RANK_ERROR);
  if (at < 0) return undefined;
  try {
    const f = JSON.parse(line.slice(at + RANK_ERROR.length)) as RankFailure;
    return typeof f.rank === 'number' && typeof f.code === 'string' ? f : undefined;
  } catch {
    return undefined;
  }
}

/** A rank torchrun saw die (its failure summary: `rank : 1 (local_rank: 1)`, `exitcode : -9`). */
export interface RankExit { rank: number; exitCode: number; signal?: string }

/** The ranks in torchrun's ChildFailedError summary (stderr lines, in order). */
export function parseTorchrunFailures(lines: string[]): RankExit[] {
  const exits: RankExit[] = [];
  let rank: number | undefined;
  for (const line of lines) {
    const r = /^\s*rank\s*:\s*(\d+)/.exec(line);
    if (r) rank = Number(r[1]);
    const e = /^\s*exitcode\s*:\s*(-?\d+)/.exec(line);
    if (e && rank !== undefined) {
      const code = Number(e[1]);
      if (!exits.some((x) => x.rank === rank)) exits.push({ rank, exitCode: code });
      rank = undefined;
    }
    const s = /^\s*traceback\s*:\s*Signal \d+ \((SIG\w+)\)/.exec(line);
    if (s && exits.length) exits[exits.length - 1].signal = s[1];
  }
  return exits;
}

const HINTS: Record<string, string> = {
  OOM: 'Lower --batch-size (the global batch; each process takes batch / nproc), or use fewer processes.',
  PEER: 'See the worker output above.',
};

/**
 * The one error for a run whose ranks failed: the cause (a rank's own failure, else a rank torchrun
 * saw killed), which rank, and what to do. Echoes (a collective failing because a peer is gone)
 * are not the cause. Undefined when nothing says which rank failed.
 */
export function rankFailureError(failures: RankFailure[], exits: RankExit[], world: number): RankscopeError | undefined {
  const cause = failures.find((f) => f.code !== 'PEER');
  const stopped = `The other processes were stopped; no model was written.`;
  const resume = 'The last checkpoint can be resumed with --resume (also with another --nproc).';
  if (cause) {
    return new RankscopeError(cause.code === 'SHAPE_MISMATCH' || cause.code === 'NUMERIC' || cause.code === 'UNSUPPORTED' ? cause.code : 'WORKER',
      `Fine-tuning process rank ${cause.rank} of ${world} failed: ${cause.message} [${cause.code}]. ${stopped}`,
      cause.hint ?? HINTS[cause.code] ?? resume);
  }
  // A rank that timed out waiting: the one torchrun had to kill is the one that stopped answering.
  const waited = failures.find((f) => f.code === 'PEER' && /timed? ?out|timeout/i.test(f.message));
  const hung = waited && exits.find((e) => e.rank !== waited.rank && (e.exitCode === -9 || e.signal === 'SIGKILL'));
  if (waited && hung) {
    return new RankscopeError('WORKER', `Fine-tuning process rank ${hung.rank} of ${world} stopped answering: rank ${waited.rank} waited for it until the timeout (${waited.message}). ${stopped}`,
      `A process that hangs (a stuck GPU, a debugger) ends the run after $RANKSCOPE_DIST_TIMEOUT_S seconds (default 600); raise it for very slow steps. ${resume}`);
  }
  // SIGTERM is torchrun stopping the others once one died; the cause is a rank killed otherwise.
  const signalled = (e: RankExit) => (e.exitCode < 0 || e.signal !== undefined) && e.exitCode !== -15 && e.signal !== 'SIGTERM';
  const killed = exits.find(signalled) ?? exits.find((e) => !failures.some((f) => f.rank === e.rank) && e.exitCode !== -15) ?? exits[0];
  if (killed) {
    const how = killed.signal ? `was killed by ${killed.signal}` : killed.exitCode < 0 ? `was killed by signal ${-killed.exitCode}` : `exited with code ${killed.exitCode}`;
    return new RankscopeError('WORKER', `Fine-tuning process rank ${killed.rank} of ${world} ${how}. ${stopped}`,
      `It was killed from outside or by the out-of-memory killer. ${resume}`);
  }
  const echo = failures[0];
  if (echo) {
    return new RankscopeError('WORKER', `Fine-tuning process rank ${echo.rank} of ${world} lost its peers: ${echo.message}. ${stopped}`, resume);
  }
  return undefined;
}
