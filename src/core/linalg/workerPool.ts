// The worker-thread pool behind every matrix job (spectra here, factorization in compress):
// jobs 0…count−1 in order, one in flight per worker, built lazily when a worker is free (the
// matrices of 85 M parameters need not all exist at once), workers started only when needed.
// Many small jobs run one per worker; a large job (teamUp) gets a team (team.ts), and a worker
// with no job left to start helps it, so one large matrix uses both cores. Cancelling, a job's
// error or a worker crash terminate the pool (a worker inside a native ONNX Runtime product only
// once it is out of it: terminating it there would abort the process, see ortGemm.ts); a pool
// that is done asks its workers to end (servePoolJobs is the worker side), which they do by themselves.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parentPort, Worker, workerData } from 'node:worker_threads';
import { cancelled, isRankscopeError, RankscopeError, type ErrorCode } from '../errors';
import { GUARD_WORDS, insideNative, requestStop, useNativeGuard } from './ortGemm';
import { assist, endTeam, leadTeam, newTeam, type TeamHandle } from './team';

export interface PoolJob {
  id: number;
  matrices: { data: Float32Array | Float64Array }[];
}

export type PoolFailure = { id: number; ok: false; code?: ErrorCode; message: string; hint?: string };

/** A helper's reply when the job it helped is over. */
type AssistDone = { assisted: true };

/** What a pool worker is sent when the pool no longer needs it. */
export const POOL_DONE = 'done';

/**
 * The worker side of the pool: answers each job with `work`'s reply (leading its team when it has
 * one; a thrown error becomes a PoolFailure), transferring the buffers `transfer` names; helps
 * another worker's job when asked to; and ends on POOL_DONE by closing its port. Ending by itself
 * rather than by terminate() lets V8 finish its background compile tasks: terminating a worker
 * under them can abort the whole Node 20 process.
 */
export function servePoolJobs<J extends PoolJob, R extends { id: number; ok: true }>(work: (job: J) => R, transfer: (reply: R) => ArrayBuffer[]): void {
  const port = parentPort;
  if (!port) return;
  const shared = workerData as { nativeGuard?: SharedArrayBuffer; notices?: SharedArrayBuffer } | null;
  if (shared?.nativeGuard) useNativeGuard(shared.nativeGuard, shared.notices);
  port.on('message', (message: (J & { team?: TeamHandle }) | { assist: TeamHandle } | typeof POOL_DONE) => {
    if (message === POOL_DONE) {
      port.close();
      return;
    }
    if ('assist' in message) {
      assist(message.assist);
      port.postMessage({ assisted: true } satisfies AssistDone);
      return;
    }
    let reply: R | PoolFailure;
    if (message.team) leadTeam(message.team);
    try {
      reply = work(message);
    } catch (e) {
      reply = isRankscopeError(e)
        ? { id: message.id, ok: false, code: e.code, message: e.message, hint: e.hint }
        : { id: message.id, ok: false, message: String((e as Error)?.stack ?? e) };
    } finally {
      endTeam();
    }
    port.postMessage(reply, reply.ok ? transfer(reply) : []);
  });
}

export interface WorkerEntry {
  file: string;
  execArgv?: string[];
}

/**
 * The bundled worker `<bundled>` next to this bundle (dist/), or the TypeScript source `<source>`
 * in `sourceDir` run through tsx in development (tests, benches).
 */
export function workerEntry(sourceDir: string, bundled: string, source: string): WorkerEntry {
  const built = join(sourceDir, bundled);
  if (existsSync(built)) return { file: built };
  const ts = join(sourceDir, source);
  // tsx's ESM hook (--import) does not reach worker threads on Node 20; its CJS hook does.
  if (existsSync(ts)) return { file: ts, execArgv: ['--require', 'tsx/cjs'] };
  throw new Error(`${bundled} not found next to ${sourceDir} (run \`npm run build\`)`);
}

export interface PoolOptions<J extends PoolJob, R extends { id: number; ok: true }> {
  /** Names the pool in crash messages ("spectra worker crashed: …"). */
  name: string;
  entry: WorkerEntry;
  count: number;
  threads?: number;
  signal?: AbortSignal;
  /** Builds job `index`, or returns undefined when it needs no worker (a cache hit). */
  prepare: (index: number) => Omit<J, 'id'> | undefined;
  onDone: (reply: R) => void;
  /** Whether a prepared job is worth two threads: it then carries a team, and idle workers help it. */
  teamUp?: (job: Omit<J, 'id'>) => boolean;
}

interface Prepared<J extends PoolJob> {
  index: number;
  job: Omit<J, 'id'>;
}

export function runWorkerPool<J extends PoolJob, R extends { id: number; ok: true }>(options: PoolOptions<J, R>): Promise<void> {
  const { name, entry, count, signal, prepare, onDone } = options;
  if (signal?.aborted) return Promise.reject(cancelled());
  const most = Math.max(1, options.threads ?? availableParallelism());
  const size = Math.min(most, count);
  const workers: Worker[] = [];
  const idle: Worker[] = [];
  const retired = new Set<Worker>();
  /** Each worker's guard word pair shared with its ortGemm (cancel, inside a native run). */
  const guards = new Map<Worker, SharedArrayBuffer>();
  /** One word for the whole pool: whether a worker already said that ORT is missing. */
  const notices = new SharedArrayBuffer(4);
  /** Running large jobs by owner, and whether one has a helper. */
  const teams = new Map<Worker, { team: TeamHandle; helped: boolean }>();
  let next = 0;
  let finished = 0;
  let settled = false;
  return new Promise<void>((resolve, reject) => {
    const stop = (error?: unknown) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      // Work in flight (a cancel, an error) is cut short; idle workers are asked to end.
      if (error) terminateAll();
      else for (const w of workers) retire(w);
      if (error) reject(error);
      else resolve();
    };
    const onAbort = () => stop(cancelled());
    // Workers outside ORT end now; the others stop at their next chunk, ended as soon as they are out.
    const terminateAll = () => {
      /** Terminates the workers `outside` says are out of ORT; returns those still inside. */
      const endThoseOutside = (ws: Worker[], outside: (guard: SharedArrayBuffer) => boolean) => ws.filter((w) => {
        if (!outside(guards.get(w)!)) return true;
        void w.terminate();
        return false;
      });
      let busy = endThoseOutside(workers, requestStop);
      if (busy.length === 0) return;
      const poll = setInterval(() => {
        busy = endThoseOutside(busy, (g) => !insideNative(g));
        if (busy.length === 0) clearInterval(poll);
      }, 2);
    };
    const retire = (w: Worker) => {
      if (retired.has(w)) return;
      retired.add(w);
      w.postMessage(POOL_DONE);
    };
    signal?.addEventListener('abort', onAbort, { once: true });

    const spawn = (): Worker => {
      const nativeGuard = new SharedArrayBuffer(GUARD_WORDS * 4);
      const worker = new Worker(entry.file, { execArgv: entry.execArgv, workerData: { nativeGuard, notices } });
      workers.push(worker);
      guards.set(worker, nativeGuard);
      worker.on('message', (reply: R | PoolFailure | AssistDone) => {
        if (settled) return;
        if ('assisted' in reply) {
          idle.push(worker);
          pump();
          return;
        }
        teams.delete(worker);
        if (!reply.ok) {
          stop(reply.code ? new RankscopeError(reply.code, reply.message, reply.hint) : new Error(`${name}: ${reply.message}`));
          return;
        }
        finished++;
        idle.push(worker);
        try {
          onDone(reply);
        } catch (e) {
          stop(e);
          return;
        }
        pump();
      });
      worker.on('error', (e) => stop(new Error(`${name} crashed: ${e.message}`)));
      worker.on('exit', (code) => {
        if (!settled && !retired.has(worker) && code !== 0) stop(new Error(`${name} exited with code ${code}`));
      });
      return worker;
    };

    /** The next job that needs a worker (cache hits count as finished), or undefined when none is left. */
    const prepareNext = (): Prepared<J> | undefined => {
      while (!settled && next < count) {
        const index = next++;
        const job = prepare(index);
        if (settled) return undefined; // prepare's callbacks may have cancelled
        if (job) return { index, job };
        finished++;
      }
      return undefined;
    };
    /**
     * One job prepared while the workers compute (reading, widening, hashing on this thread), so a
     * worker that finishes gets its next job at once instead of waiting for that. One, not one per
     * worker: a prepared job holds a copy of its layer.
     */
    let ahead: Prepared<J> | undefined;
    const pump = () => {
      try {
        while (!settled && (idle.length > 0 || workers.length < size)) {
          const item = ahead ?? prepareNext();
          ahead = undefined;
          if (!item) break;
          const { index, job } = item;
          // Transfer only buffers the job owns whole (a view into a model's buffer would be detached).
          for (const m of job.matrices) if (m.data.byteLength !== m.data.buffer.byteLength) m.data = m.data.slice();
          const worker = idle.pop() ?? spawn();
          const team = options.teamUp?.(job) ? newTeam() : undefined;
          if (team) teams.set(worker, { team, helped: false });
          worker.postMessage({ id: index, ...job, team }, job.matrices.map((m) => m.data.buffer as ArrayBuffer));
        }
        ahead ??= prepareNext();
        if (settled) return; // the loop ended on a cancel, or prepare's callbacks cancelled
        if (next >= count && !ahead) {
          // Nothing left to start: free workers (or new ones, up to the cores) help large jobs.
          for (const running of teams.values()) {
            if (running.helped || (idle.length === 0 && workers.length >= most)) continue;
            running.helped = true;
            (idle.pop() ?? spawn()).postMessage({ assist: running.team });
          }
          for (const w of idle.splice(0)) retire(w);
        }
      } catch (e) {
        stop(e);
        return;
      }
      if (finished === count) stop();
    };
    pump();
  });
}
