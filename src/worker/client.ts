// FinetuneWorker: spawns the Python worker with an explicit interpreter and argv, and supervises
// it. stdout carries protocol.ts messages only; stderr lines go to `onStderr` (the log channel)
// and the last ones are kept for error reports. The worker runs in its own process group
// (detached), so killing it takes its children (data-loader processes) along.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';
import { RankscopeError, cancelled } from '../core/errors';
import {
  parseRankFailure, parseTorchrunFailures, processCount, processesEnv, rankFailureError, usesTorchrun, workerArgv,
  type ProcessesOptions, type RankFailure,
} from './distributed';
import {
  encodeClientMessage, parseWorkerLine, PROTOCOL_VERSION, type ClientMessage, type DoneMessage, type ErrorMessage,
  type FinetuneConfig, type HelloMessage, type ModuleFinetuneConfig, type WorkerMessage,
} from './protocol';

/** Folder holding the `rankscope_worker` Python package: next to this file under tsx, or the
 * source tree next to a bundle in dist/. */
export function workerPythonPath(): string {
  const candidates = [
    join(__dirname, 'python'),
    join(__dirname, '..', 'src', 'worker', 'python'),
    join(__dirname, '..', '..', 'src', 'worker', 'python'),
  ];
  const found = candidates.find((d) => existsSync(join(d, 'rankscope_worker', '__main__.py')));
  if (!found) throw new Error(`rankscope_worker Python package not found (looked in ${candidates.join(', ')})`);
  return found;
}

/** The interpreter when none is configured: $RANKSCOPE_PYTHON, else `python3` (`python` on Windows). */
export function defaultPython(): string {
  return process.env.RANKSCOPE_PYTHON || (process.platform === 'win32' ? 'python' : 'python3');
}

/** `nproc`/`gpus` (distributed.ts): several processes start under torchrun; rank 0 speaks. */
export interface WorkerOptions extends ProcessesOptions {
  /** Interpreter path (setting → Python extension's environment → defaultPython()). */
  python: string;
  /** Time allowed for `import torch` and the `hello` message. */
  helloTimeoutMs?: number;
  /** After `cancel`, how long the worker has to checkpoint and exit before its tree is killed. */
  cancelGraceMs?: number;
  /** Extra environment (e.g. CUDA_VISIBLE_DEVICES). */
  env?: NodeJS.ProcessEnv;
  /** Each stderr line of the worker (tracebacks, library warnings). */
  onStderr?: (line: string) => void;
  /** Extra worker arguments (`--hello`). */
  args?: string[];
}

const STDERR_KEEP = 30;

export class FinetuneWorker {
  private readonly listeners = new Set<(m: WorkerMessage) => void>();
  private readonly stderrTail: string[] = [];
  /** Under torchrun: what failed ranks said, and torchrun's summary lines (rank, exitcode, traceback). */
  private readonly rankFailures: RankFailure[] = [];
  private readonly torchrunSummary: string[] = [];
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exited: Promise<void>;
  private lastError: ErrorMessage | undefined;
  hello!: HelloMessage;

  private constructor(private readonly child: ChildProcess, private readonly options: WorkerOptions) {
    // 'close' (not 'exit'): fires after stdout is drained, so a final done/error line is never lost.
    this.exited = new Promise((resolve) => child.once('close', (code, signal) => {
      this.exitInfo = { code, signal };
      resolve();
    }));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const msg = parseWorkerLine(line);
      if (!msg) {
        this.keepStderr(line); // not ours: treat like stderr rather than lose it
        return;
      }
      if (msg.type === 'error') this.lastError = msg;
      for (const l of this.listeners) l(msg);
    });
    createInterface({ input: child.stderr! }).on('line', (line) => this.keepStderr(line));
    child.stdin!.on('error', () => undefined); // EPIPE when the worker is gone: the exit path reports it
  }

  /** Spawns the worker and waits for `hello` (rejects with a WORKER error naming what is missing). */
  static async launch(options: WorkerOptions, signal?: AbortSignal): Promise<FinetuneWorker> {
    if (signal?.aborted) throw cancelled();
    const pythonPath = workerPythonPath();
    const env = { ...process.env, ...processesEnv(options, { ...process.env, ...options.env }), ...options.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1',
      PYTHONPATH: [pythonPath, options.env?.PYTHONPATH ?? process.env.PYTHONPATH].filter(Boolean).join(delimiter) };
    const child = spawn(options.python, workerArgv(options, options.args), {
      env, stdio: ['pipe', 'pipe', 'pipe'], detached: process.platform !== 'win32', windowsHide: true,
    });
    const worker = new FinetuneWorker(child, options);
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      const hello = await Promise.race([
        worker.next('hello'),
        spawnError.then((e) => {
          throw new RankscopeError('WORKER', `Cannot start Python '${options.python}': ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such interpreter' : e.message}.`,
            'Choose a Python with PyTorch: the rankscope.python.interpreter setting in VS Code, --python on the command line.');
        }),
        worker.exited.then(() => { throw worker.failure('before saying hello'); }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new RankscopeError('WORKER', `The Python worker (${options.python}) did not start within ${Math.round((options.helloTimeoutMs ?? 120_000) / 1000)} s.${worker.tailText()}`,
            'Importing torch can be slow the first time; try again, or check the interpreter.')), options.helloTimeoutMs ?? 120_000);
        }),
        new Promise<never>((_, reject) => {
          onAbort = () => reject(cancelled());
          signal?.addEventListener('abort', onAbort, { once: true });
        }),
      ]);
      if (hello.protocol !== PROTOCOL_VERSION) {
        throw new RankscopeError('WORKER', `The Python worker speaks protocol ${hello.protocol}; this Rankscope needs ${PROTOCOL_VERSION}.`,
          'The worker files and the extension come from different versions; reinstall Rankscope.');
      }
      worker.hello = hello;
      return worker;
    } catch (e) {
      worker.kill();
      throw e;
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  onMessage(listener: (m: WorkerMessage) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  send(msg: ClientMessage): void {
    if (this.exitInfo || !this.child.stdin?.writable) return;
    this.child.stdin.write(encodeClientMessage(msg));
  }

  /**
   * Sends `start` and resolves with `done` (status 'completed' or 'cancelled'). Aborting sends
   * `cancel`; the worker checkpoints and answers `done`, or is killed after the grace period
   * (then this rejects with CANCELLED). An `error` message or a crash rejects with WORKER.
   */
  run(config: FinetuneConfig | ModuleFinetuneConfig, options: { signal?: AbortSignal; onMessage?: (m: WorkerMessage) => void } = {}): Promise<DoneMessage> {
    const off = options.onMessage ? this.onMessage(options.onMessage) : () => undefined;
    let grace: NodeJS.Timeout | undefined;
    let killedAfterCancel = false;
    const onAbort = () => {
      this.send({ type: 'cancel' });
      grace = setTimeout(() => { killedAfterCancel = true; this.kill(); }, this.options.cancelGraceMs ?? 30_000);
    };
    if (options.signal?.aborted) return Promise.reject(cancelled());
    options.signal?.addEventListener('abort', onAbort, { once: true });
    this.send({ type: 'start', config });
    const result = Promise.race([
      this.next('done'),
      this.next('error').then((e) => { throw this.errorFrom(e); }),
      this.exited.then(() => {
        if (killedAfterCancel) throw cancelled();
        throw this.failure('while fine-tuning');
      }),
    ]);
    return result.finally(() => {
      off();
      clearTimeout(grace);
      options.signal?.removeEventListener('abort', onAbort);
    });
  }

  /** Asks the worker to exit, then kills its process tree after `timeoutMs`. */
  async dispose(timeoutMs = 5_000): Promise<void> {
    this.send({ type: 'exit' });
    this.child.stdin?.end();
    const timer = setTimeout(() => this.kill(), timeoutMs);
    await this.exited;
    clearTimeout(timer);
    this.killGroup('SIGKILL'); // leftover children in the group (data loaders)
  }

  /** Kills the worker and every process in its group at once. */
  kill(): void {
    this.killGroup('SIGKILL');
    if (!this.exitInfo) this.child.kill('SIGKILL');
  }

  private killGroup(signal: NodeJS.Signals): void {
    const pid = this.child.pid;
    if (pid === undefined) return;
    if (process.platform === 'win32') {
      if (!this.exitInfo) spawnSync('taskkill', ['/pid', String(pid), '/T', '/F'], { windowsHide: true });
      return;
    }
    try {
      process.kill(-pid, signal);
    } catch {
      // group already gone
    }
  }

  /** The next message of `type` (rejects never; pair with exit handling). */
  private next<T extends WorkerMessage['type']>(type: T): Promise<Extract<WorkerMessage, { type: T }>> {
    return new Promise((resolve) => {
      const off = this.onMessage((m) => {
        if (m.type === type) {
          off();
          resolve(m as Extract<WorkerMessage, { type: T }>);
        }
      });
    });
  }

  private keepStderr(line: string): void {
    const rankFailure = parseRankFailure(line);
    if (rankFailure) this.rankFailures.push(rankFailure);
    if (/^\s*(rank|exitcode|traceback)\s*:/.test(line)) this.torchrunSummary.push(line);
    this.stderrTail.push(line);
    if (this.stderrTail.length > STDERR_KEEP) this.stderrTail.shift();
    this.options.onStderr?.(line);
  }

  private tailText(lines = 12): string {
    const tail = this.stderrTail.slice(-lines).filter((l) => l.trim());
    return tail.length ? `\nLast worker output:\n  ${tail.join('\n  ')}` : '';
  }

  private errorFrom(e: ErrorMessage): RankscopeError {
    const where = e.missing?.length ? ` Missing ops: ${e.missing.join(', ')}.` : '';
    const code = e.code === 'SHAPE_MISMATCH' || e.code === 'UNSUPPORTED' || e.code === 'NUMERIC' ? e.code : 'WORKER';
    const err = new RankscopeError(code, `Fine-tuning worker: ${e.message}${code === 'WORKER' ? ` [${e.code}]` : ''}${where}${e.code === 'INTERNAL' ? this.tailText() : ''}`,
      e.hint ?? undefined);
    (err as RankscopeError & { workerCode?: string; traceback?: string }).workerCode = e.code;
    (err as RankscopeError & { traceback?: string }).traceback = e.traceback;
    return err;
  }

  /** The worker ended without `done`: an error it reported, or a crash with its last stderr lines. */
  private failure(when: string): RankscopeError {
    if (this.lastError) return this.errorFrom(this.lastError);
    if (usesTorchrun(this.options)) {
      const ranks = rankFailureError(this.rankFailures, parseTorchrunFailures(this.torchrunSummary), processCount(this.options));
      if (ranks) return ranks;
    }
    const how = this.exitInfo?.signal ? `was killed by ${this.exitInfo.signal}` : `exited with code ${this.exitInfo?.code}`;
    const oom = this.stderrTail.some((l) => /out of memory/i.test(l));
    return new RankscopeError('WORKER', `The fine-tuning worker ${how} ${when}.${this.tailText()}`,
      oom ? 'The GPU ran out of memory: lower --batch-size.'
        : this.exitInfo?.signal === 'SIGKILL' ? 'It was killed from outside (or by the out-of-memory killer); the last checkpoint can be resumed with --resume.'
          : 'See the worker output above; the last checkpoint can be resumed with --resume.');
  }
}
