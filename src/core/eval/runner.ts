// OrtRunner: ONNX Runtime (onnxruntime-node) in a worker thread. One runner = one thread that
// can hold several sessions (the original and compressed models side by side, so latency is
// compared in the same process). Cancelling rejects every pending call with CANCELLED at once; the
// thread itself ends after the native run in progress returns (terminating a thread inside
// session.run aborts the whole process), and no further queued run starts.
import { Worker } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { RankscopeError, cancelled } from '../errors';
import type { ActivationSpec, ExecutionProvider, FoldedGram, FromWorker, OpenedSession, TensorInfo, ToWorker, WireTensor } from './runnerProtocol';

export type { ExecutionProvider, TensorInfo, WireTensor } from './runnerProtocol';

export interface RunnerOptions {
  /** 'cpu' (always there) or 'cuda' (only where onnxruntime-node was installed with CUDA). */
  ep?: ExecutionProvider;
  /** ONNX Runtime intra-op threads; default: ORT's choice (all cores). */
  intraOpThreads?: number;
  /** Aborting rejects pending calls at once and stops the thread after the current native run. */
  signal?: AbortSignal;
}

/** The bundled worker (dist/ort-worker.js) next to the bundle; the TS source under tsx (tests, benches). */
function startWorker(): Worker {
  const built = join(__dirname, 'ort-worker.js');
  if (existsSync(built)) return new Worker(built);
  const source = join(__dirname, 'ortWorker.ts');
  if (existsSync(source)) {
    // Loader hooks of the parent do not reach a worker's entry module; register tsx inside it.
    return new Worker(`require('tsx/cjs'); require(${JSON.stringify(source)});`, { eval: true });
  }
  throw new Error(`ONNX Runtime worker not found next to ${__dirname} (expected ort-worker.js); run \`npm run build\`.`);
}

export class OrtRunner {
  private readonly worker: Worker;
  private readonly cancelFlag = new Int32Array(new SharedArrayBuffer(4));
  private exited = false;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private dead: Error | undefined;
  private readonly onAbort = () => this.fail(cancelled());

  private constructor(readonly options: Required<Pick<RunnerOptions, 'ep'>> & RunnerOptions) {
    this.worker = startWorker();
    this.worker.postMessage({ type: 'init', id: 0, cancelFlag: this.cancelFlag.buffer });
    this.worker.on('message', (msg: FromWorker) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.type === 'ok') p.resolve(msg.result);
      // ONNX Runtime's messages span lines; the CLI's error is one line.
      else if (msg.code) p.reject(new RankscopeError(msg.code, msg.message, msg.code === 'NUMERIC' ? 'Check the calibration data and the model (an overflow in float16?).' : 'Check that the calibration data fits the model.'));
      else p.reject(new RankscopeError('RUNTIME', `ONNX Runtime: ${msg.message.trim().replace(/\s*\n\s*/g, ' ')}`));
    });
    this.worker.on('error', (e) => this.fail(new RankscopeError('RUNTIME', `ONNX Runtime worker failed: ${e.message}`)));
    this.worker.on('exit', (code) => {
      this.exited = true;
      this.fail(new RankscopeError('RUNTIME', `ONNX Runtime worker exited (code ${code}).`));
    });
    options.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  static create(options: RunnerOptions = {}): OrtRunner {
    const ep = options.ep ?? 'cpu';
    if (ep !== 'cpu' && ep !== 'cuda') throw new RankscopeError('BAD_ARGUMENT', `execution provider must be cpu or cuda; got '${ep}'.`);
    if (options.intraOpThreads !== undefined && !(Number.isInteger(options.intraOpThreads) && options.intraOpThreads >= 1)) {
      throw new RankscopeError('BAD_ARGUMENT', `threads must be an integer ≥ 1; got ${options.intraOpThreads}.`);
    }
    if (options.signal?.aborted) throw cancelled();
    return new OrtRunner({ ...options, ep });
  }

  /** Loads a model from a path or from bytes (an in-memory compressed model). */
  async open(model: string | Uint8Array, label = typeof model === 'string' ? model : 'in-memory model'): Promise<OrtSession> {
    try {
      const opened = await this.call<OpenedSession>({ type: 'open', id: 0, model, ep: this.options.ep, intraOpThreads: this.options.intraOpThreads });
      return new OrtSession(this, opened.session, opened.inputs, opened.outputs, label);
    } catch (e) {
      if (e instanceof RankscopeError && e.code === 'RUNTIME' && this.options.ep === 'cuda') {
        throw new RankscopeError('RUNTIME', `the CUDA execution provider is not available in this onnxruntime-node install (${e.message.replace(/^ONNX Runtime: /, '')}).`,
          'Reinstall with CUDA 12 binaries: `npm install onnxruntime-node --onnxruntime-node-install=cuda12` (needs an NVIDIA driver + CUDA 12/cuDNN 9), or use --ep cpu.');
      }
      if (e instanceof RankscopeError && e.code === 'RUNTIME') throw new RankscopeError('RUNTIME', `${label}: ONNX Runtime cannot load the model: ${e.message.replace(/^ONNX Runtime: /, '')}`);
      throw e;
    }
  }

  /** @internal */
  call<T>(msg: ToWorker, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...msg, id }, transfer);
    });
  }

  private fail(error: Error): void {
    if (this.dead) return;
    this.dead = error;
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
    this.options.signal?.removeEventListener('abort', this.onAbort);
    this.stopWorker();
  }

  /** Stops queued work and lets the thread end by itself once no native run is in flight. */
  private stopWorker(): Promise<void> {
    if (this.exited) return Promise.resolve();
    Atomics.store(this.cancelFlag, 0, 1);
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage({ type: 'shutdown', id: 0 });
    return exited;
  }

  async dispose(): Promise<void> {
    if (!this.dead) this.fail(new RankscopeError('RUNTIME', 'The ONNX Runtime runner was disposed.'));
    await this.stopWorker();
  }
}

export class OrtSession {
  constructor(
    private readonly runner: OrtRunner,
    private readonly id: number,
    readonly inputs: TensorInfo[],
    readonly outputs: TensorInfo[],
    readonly label: string,
  ) {}

  /** One batch. Input buffers are copied to the worker (the caller keeps them). */
  run(feeds: Record<string, WireTensor>): Promise<Record<string, WireTensor>> {
    return this.runner.call({ type: 'run', id: 0, session: this.id, feeds });
  }

  /** Like run(), but hands the input buffers to the worker (zero copy; the caller loses them). */
  runTransferring(feeds: Record<string, WireTensor>): Promise<Record<string, WireTensor>> {
    const buffers = [...new Set(Object.values(feeds).map((t) => t.data.buffer as ArrayBuffer))];
    return this.runner.call({ type: 'run', id: 0, session: this.id, feeds }, buffers);
  }

  /** `warmup` untimed runs, then `runs` timed ones inside the worker; returns ms per run. */
  time(feeds: Record<string, WireTensor>, warmup: number, runs: number): Promise<number[]> {
    return this.runner.call({ type: 'time', id: 0, session: this.id, feeds, warmup, runs });
  }

  /** Calibration: runs one batch and folds the activations `specs` name into their input Grams (kept in the worker). Returns each spec's activation dims. */
  fold(feeds: Record<string, WireTensor>, specs: ActivationSpec[]): Promise<Record<number, number[]>> {
    const buffers = [...new Set(Object.values(feeds).map((t) => t.data.buffer as ArrayBuffer))];
    return this.runner.call({ type: 'fold', id: 0, session: this.id, feeds, specs }, buffers);
  }

  /** Calibration: the Grams folded so far, one per spec (the worker forgets them). */
  takeGrams(): Promise<FoldedGram[]> {
    return this.runner.call({ type: 'takeGrams', id: 0, session: this.id });
  }

  close(): Promise<void> {
    return this.runner.call({ type: 'close', id: 0, session: this.id });
  }
}
