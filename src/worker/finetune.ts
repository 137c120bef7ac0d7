// The whole fine-tuning job, as the CLI and the extension run it: export the compressed model
// (and the teacher) for the worker, start the worker, stream its messages, and on completion
// write the best weights back into a copy of the compressed ONNX — then check that copy in
// ONNX Runtime against the outputs the worker itself computed (the `probe`). The work folder keeps
// a run record (run.json: the request, how far the run got, how it ended) that a resume reads.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { RankscopeError } from '../core/errors';
import { openOnnxModel } from '../core/formats';
import { checkOutputPath, writeFileAtomicSync } from '../core/fs/atomicWrite';
import { OrtRunner } from '../core/eval/runner';
import type { FinetuneWorker } from './client';
import { checkProcesses, type ProcessesOptions } from './distributed';
import { exportGraph, type ExportedGraph } from './graphExport';
import type { DataSpec, FinetuneConfig, FinetuneSummary, HelloMessage, TrainingOptions, WorkerMessage } from './protocol';
import { runWorker } from './runWorker';
import { readSafetensors } from './safetensors';
import { checkTraining, resolveTraining, type TrainingRequest } from './trainingOptions';

import { defaultFinetunedPath, writeBack } from './writeBack';

/** What every fine-tuning job takes, whatever the model source (an ONNX graph, the user's nn.Module). */
export interface FinetuneJob {
  data: DataSpec;
  /** How to train; unset options take TRAINING_DEFAULTS. Every value is range-checked first. */
  training?: TrainingRequest;
  /** Work folder (exported graph, checkpoints); default `.<out name>.finetune/` next to the output. */
  workDir?: string;
  /** Continue from the work folder's checkpoint (true) or from a given checkpoint.pt. */
  resume?: boolean | string;
  /** Check the result against the worker's own outputs (default true). */
  verify?: boolean;
  /** How the worker process starts. */
  worker?: WorkerStart;
}

export interface FinetuneRequest extends FinetuneJob {
  /** The compressed ONNX model. */
  model: string;
  /** The uncompressed original, for distillation (kd defaults to KD_DEFAULTS with a teacher). */
  teacher?: string;
  /** Output ONNX; default `<model>.finetuned.onnx` next to the model. */
  out?: string;
}

/** How the worker starts; `nproc`/`gpus`: several processes under torchrun (distributed.ts). */
export interface WorkerStart extends ProcessesOptions {
  /** Interpreter; default defaultPython(). */
  python?: string;
  helloTimeoutMs?: number;
  cancelGraceMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface FinetuneHandlers {
  signal?: AbortSignal;
  /** Every protocol message, in order (hello first). */
  onMessage?: (m: WorkerMessage) => void;
  /** Worker stderr lines (for a log channel). */
  onStderr?: (line: string) => void;
  /** Called with the worker once it said hello (e.g. to show its pid or kill it in tests). */
  onWorker?: (w: FinetuneWorker) => void;
}

export interface FinetuneResult {
  status: 'completed' | 'cancelled';
  summary: FinetuneSummary;
  hello: HelloMessage;
  /** The fine-tuned ONNX (completed runs). */
  output?: string;
  /** checkpoint.pt: pass as `resume` to continue. */
  checkpoint: string | null;
  workDir: string;
  summaryPath: string;
  /** Max |ONNX Runtime(output) − worker forward| over the probe samples. */
  verification?: { samples: number; maxAbsDiff: number };
}

export function defaultWorkDir(out: string): string {
  return join(dirname(resolve(out)), `.${basename(out)}.finetune`);
}

/** run.json in a work folder: what the run was asked (enough to run it again with `resume`) and how far it got. */
export interface RunRecord {
  version: 1;
  model: string;
  out: string;
  teacher?: string;
  data: DataSpec;
  /** Every option, resolved. */
  training: TrainingOptions;
  /** 'running' after a crash or kill too: the process never said how it ended. */
  status: 'running' | 'completed' | 'cancelled' | 'failed';
  /** The last checkpoint: epochs done and steps done of the next (a resume continues there). */
  epochsDone: number;
  step: number;
  epochs: number;
  /** ISO time of the last change. */
  updated: string;
  error?: string;
}

export const RUN_RECORD = 'run.json';
export const CHECKPOINT = 'checkpoint.pt';

/** The run record of `workDir`, or undefined when it has none (or one this version cannot read). */
export function readRunRecord(workDir: string): RunRecord | undefined {
  try {
    const r = JSON.parse(readFileSync(join(workDir, RUN_RECORD), 'utf8')) as RunRecord;
    return r.version === 1 && typeof r.model === 'string' && typeof r.out === 'string' ? r : undefined;
  } catch {
    return undefined;
  }
}

/** A work folder whose run can be resumed: it has a checkpoint and its run did not complete. */
export interface Resumable { workDir: string; checkpoint: string; record: RunRecord }

/** The resumable runs in the work folders under `root` (of `model` when given), the most recent first. */
export function findResumable(root: string, model?: string): Resumable[] {
  if (!existsSync(root)) return [];
  const found: Resumable[] = [];
  for (const name of readdirSync(root)) {
    const workDir = join(root, name);
    const record = readRunRecord(workDir);
    const checkpoint = join(workDir, CHECKPOINT);
    if (!record || record.status === 'completed' || !existsSync(checkpoint)) continue;
    if (model && resolve(record.model) !== resolve(model)) continue;
    found.push({ workDir, checkpoint, record });
  }
  return found.sort((a, b) => b.record.updated.localeCompare(a.record.updated));
}

function writeRunRecord(workDir: string, record: RunRecord): void {
  writeFileAtomicSync(join(workDir, RUN_RECORD), JSON.stringify({ ...record, updated: new Date().toISOString() }, null, 2));
}

/**
 * The data must exist; the work folder (default next to `out`) and the checkpoint to resume from
 * (`resume: true`: the work folder's), which must exist when asked for.
 */
export function jobFolders(req: FinetuneJob, out: string): { workDir: string; resume: string | null } {
  if (!existsSync(req.data.path)) throw new RankscopeError('NOT_FOUND', `Data file not found: ${req.data.path}`);
  const workDir = resolve(req.workDir ?? defaultWorkDir(out));
  const resume = req.resume === true ? join(workDir, CHECKPOINT) : req.resume || null;
  if (resume && !existsSync(resume)) {
    throw new RankscopeError('NOT_FOUND', `No checkpoint to resume from at ${resume}.`, 'Run without --resume to start over.');
  }
  return { workDir, resume };
}

export async function finetune(req: FinetuneRequest, handlers: FinetuneHandlers = {}): Promise<FinetuneResult> {
  const { signal } = handlers;
  const out = resolve(req.out ?? defaultFinetunedPath(req.model));
  const training = resolveTraining(req.training, req.teacher !== undefined);
  checkTraining(training, req.data);
  checkProcesses(req.worker ?? {}, training);
  checkOutputPath(out, { inputs: [req.model, req.teacher] }); // before the training, not after
  if (training.kd && !req.teacher) throw new RankscopeError('BAD_ARGUMENT', 'Distillation needs the original model as --teacher.');
  const { workDir, resume } = jobFolders(req, out);
  const model = await openOnnxModel(req.model, { signal });
  const student = await exportGraph(model, workDir, 'student', signal);
  const teacher = req.teacher ? await exportGraph(await openOnnxModel(req.teacher, { signal }), workDir, 'teacher', signal) : undefined;

  mkdirSync(workDir, { recursive: true });
  // A fresh run owns the folder: an earlier run's checkpoint must not be resumed as this one's.
  if (!resume) for (const f of [CHECKPOINT, 'summary.json']) rmSync(join(workDir, f), { force: true });
  const previous = resume ? readRunRecord(workDir) : undefined;
  const data: DataSpec = { ...req.data, path: resolve(req.data.path), ...(req.data.valPath ? { valPath: resolve(req.data.valPath) } : {}) };
  const record: RunRecord = {
    version: 1, model: resolve(req.model), out, ...(req.teacher ? { teacher: resolve(req.teacher) } : {}), data, training,
    status: 'running', epochsDone: previous?.epochsDone ?? 0, step: previous?.step ?? 0, epochs: training.epochs, updated: '',
  };
  writeRunRecord(workDir, record);
  const onMessage = (m: WorkerMessage): void => {
    if (m.type === 'checkpoint') writeRunRecord(workDir, Object.assign(record, { epochsDone: m.epochsDone, step: m.step }));
    handlers.onMessage?.(m);
  };
  try {
    const result = await trainAndWriteBack(req, handlers, { training, workDir, resume, out, student, teacher, onMessage });
    writeRunRecord(workDir, Object.assign(record, { status: result.status }));
    return result;
  } catch (e) {
    const cancelled = e instanceof RankscopeError && e.code === 'CANCELLED';
    writeRunRecord(workDir, Object.assign(record, cancelled ? { status: 'cancelled' } : { status: 'failed', error: (e as Error).message }));
    throw e;
  }
}

interface Prepared {
  training: TrainingOptions;
  workDir: string;
  resume: string | null;
  out: string;
  student: ExportedGraph;
  teacher?: ExportedGraph;
  onMessage: (m: WorkerMessage) => void;
}

/** Trains in the worker, and on completion writes the weights back and checks them. */
async function trainAndWriteBack(req: FinetuneRequest, handlers: FinetuneHandlers, p: Prepared): Promise<FinetuneResult> {
  const { signal } = handlers;
  const { training, workDir, resume, out, student, teacher, onMessage } = p;
  const config: FinetuneConfig = {
    ...training, data: req.data, graph: student.graph, weights: student.weights,
    teacher: teacher ? { graph: teacher.graph, weights: teacher.weights } : null, outDir: workDir, resume,
  };
  const { done, hello } = await runWorker(config, req.worker, { ...handlers, onMessage });
  const result: FinetuneResult = {
    status: done.status, summary: done.summary, hello, checkpoint: done.checkpoint, workDir, summaryPath: done.summaryPath,
  };
  if (done.status !== 'completed' || !done.weights) return result;
  await writeBack(req.model, done.weights, out, signal);
  result.output = out;
  if (req.verify !== false && done.probe) result.verification = await verifyWithOrt(out, done.probe, signal);
  return result;
}

/** Runs the written model in ONNX Runtime on the probe inputs; max abs diff to the worker's outputs. */
export async function verifyWithOrt(modelPath: string, probePath: string, signal?: AbortSignal): Promise<{ samples: number; maxAbsDiff: number }> {
  const probe = await readSafetensors(probePath);
  const feeds: Record<string, { type: string; dims: number[]; data: Float32Array }> = {};
  const expected = new Map<string, Float32Array>();
  let samples = 0;
  for (const [key, t] of probe) {
    if (t.dtype !== 'float32') continue;
    const data = new Float32Array(t.bytes.slice().buffer);
    if (key.startsWith('input:')) {
      feeds[key.slice(6)] = { type: 'float32', dims: t.shape, data };
      samples = t.shape[0];
    } else if (key.startsWith('output:')) expected.set(key.slice(7), data);
  }
  const runner = OrtRunner.create({ signal, intraOpThreads: 1 });
  try {
    const session = await runner.open(modelPath);
    const outputs = await session.run(feeds);
    let maxAbsDiff = 0;
    for (const [name, want] of expected) {
      const got = outputs[name]?.data as Float32Array | undefined;
      if (!got || got.length !== want.length) {
        throw new RankscopeError('RUNTIME', `ONNX Runtime's output '${name}' of ${basename(modelPath)} does not match the worker's in size.`);
      }
      for (let i = 0; i < want.length; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(got[i] - want[i]));
    }
    return { samples, maxAbsDiff };
  } finally {
    await runner.dispose();
  }
}
