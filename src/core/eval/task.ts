// `rankscope.json`: the evaluation task of a workspace (schema: schemas/rankscope.schema.json,
// docs: docs/task-file.md). Paths in it are relative to the file's folder. This validator and
// the schema describe the same fields; the schema gives the editor completion, this gives the
// CLI and the extension one clear message per mistake.
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { isSweepAllocation, SWEEP_ALLOCATIONS, SWEEP_METHODS, type SweepAllocation, type SweepMethod } from '../compress/budget';
import { RankscopeError } from '../errors';
import type { DatasetSpec } from './dataset';
import type { ScoreMetric } from './metrics';
import type { NtuOptions } from './ntu';
import type { ExecutionProvider } from './runnerProtocol';

export interface TaskFile {
  model?: string;
  data?: string;
  inputs?: Record<string, string>;
  labels?: string | null;
  output?: string;
  /** Axis of `output` holding the classes (batch = 0; negative from the end). */
  classAxis?: number;
  preset?: 'ntu' | 'none';
  ntu?: Partial<NtuOptions>;
  metric?: ScoreMetric;
  batchSize?: number;
  limit?: number;
  ep?: ExecutionProvider;
  threads?: number;
  latency?: { warmup?: number; runs?: number } | false;
  sweep?: {
    levels?: number[];
    energies?: number[];
    allocations?: SweepAllocation[];
    /** Factorization methods compared at every level ('whitened' calibrates on the data first). */
    methods?: SweepMethod[];
    layers?: string[];
    out?: string;
  };
}

/** A task with every path absolute and defaults filled in. */
export interface EvalTask {
  model?: string;
  dataset: DatasetSpec | undefined;
  output?: string;
  classAxis?: number;
  metric: ScoreMetric;
  batchSize: number;
  ep: ExecutionProvider;
  threads?: number;
  latency: { warmup: number; runs: number } | false;
  sweep: NonNullable<TaskFile['sweep']>;
}

const KEYS = ['$schema', 'model', 'data', 'inputs', 'labels', 'output', 'classAxis', 'preset', 'ntu', 'metric', 'batchSize', 'limit', 'ep', 'threads', 'latency', 'sweep'];

export async function readTaskFile(path: string): Promise<TaskFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new RankscopeError('NOT_FOUND', `${path}: no such task file.`);
    throw e;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new RankscopeError('BAD_ARGUMENT', `${path} is not valid JSON: ${(e as Error).message}`);
  }
  validateTask(json, path);
  const task = json as TaskFile;
  // Relative paths are relative to the task file.
  const base = dirname(resolve(path));
  const abs = (p: string | undefined) => (p === undefined ? undefined : isAbsolute(p) ? p : resolve(base, p));
  return {
    ...task,
    model: abs(task.model),
    data: abs(task.data),
    ...(task.sweep ? { sweep: { ...task.sweep, out: abs(task.sweep.out) } } : {}),
  };
}

/** Throws BAD_ARGUMENT naming the file and the field for anything the schema would reject. */
export function validateTask(json: unknown, path: string): asserts json is TaskFile {
  const bad = (field: string, want: string) => new RankscopeError('BAD_ARGUMENT', `${path}: "${field}" ${want}.`, 'See docs/task-file.md (the editor validates rankscope.json against its schema).');
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('(top level)', 'must be an object');
  const t = json as Record<string, unknown>;
  for (const key of Object.keys(t)) if (!KEYS.includes(key)) throw bad(key, `is not a known field (known: ${KEYS.slice(1).join(', ')})`);
  const str = (k: string) => { if (t[k] !== undefined && (typeof t[k] !== 'string' || t[k] === '')) throw bad(k, 'must be a non-empty string'); };
  const posInt = (v: unknown, k: string) => { if (v !== undefined && !(Number.isInteger(v) && (v as number) >= 1)) throw bad(k, 'must be an integer ≥ 1'); };
  const oneOf = (v: unknown, k: string, options: readonly string[]) => { if (v !== undefined && !options.includes(v as string)) throw bad(k, `must be one of ${options.join(', ')}`); };
  str('model'); str('data'); str('output');
  if (t.inputs !== undefined) {
    if (typeof t.inputs !== 'object' || t.inputs === null || Array.isArray(t.inputs)) throw bad('inputs', 'must map model input names to array names');
    for (const [k, v] of Object.entries(t.inputs)) if (typeof v !== 'string' || !v) throw bad(`inputs.${k}`, 'must be an array name');
  }
  if (t.labels !== undefined && t.labels !== null && (typeof t.labels !== 'string' || !t.labels)) throw bad('labels', 'must be an array name or null');
  if (t.classAxis !== undefined && !Number.isInteger(t.classAxis)) throw bad('classAxis', 'must be an integer (an axis of the output; negative counts from the end)');
  oneOf(t.preset, 'preset', ['ntu', 'none']);
  if (t.ntu !== undefined) {
    const n = t.ntu as Record<string, unknown>;
    if (typeof n !== 'object' || n === null) throw bad('ntu', 'must be an object');
    for (const k of Object.keys(n)) if (!['frames', 'crop', 'resample'].includes(k)) throw bad(`ntu.${k}`, 'is not a known field (frames, crop, resample)');
    posInt(n.frames, 'ntu.frames');
    if (n.crop !== undefined && !(typeof n.crop === 'number' && n.crop > 0 && n.crop <= 1)) throw bad('ntu.crop', 'must be a number in (0, 1]');
    oneOf(n.resample, 'ntu.resample', ['linear', 'uniform']);
  }
  oneOf(t.metric, 'metric', ['top1', 'top5', 'agreement', 'kl']);
  posInt(t.batchSize, 'batchSize');
  posInt(t.limit, 'limit');
  oneOf(t.ep, 'ep', ['cpu', 'cuda']);
  posInt(t.threads, 'threads');
  if (t.latency !== undefined && t.latency !== false) {
    const l = t.latency as Record<string, unknown>;
    if (typeof l !== 'object' || l === null) throw bad('latency', 'must be an object or false');
    if (l.warmup !== undefined && !(Number.isInteger(l.warmup) && (l.warmup as number) >= 0)) throw bad('latency.warmup', 'must be an integer ≥ 0');
    posInt(l.runs, 'latency.runs');
  }
  if (t.sweep !== undefined) {
    const s = t.sweep as Record<string, unknown>;
    if (typeof s !== 'object' || s === null) throw bad('sweep', 'must be an object');
    for (const k of Object.keys(s)) if (!['levels', 'energies', 'allocations', 'methods', 'layers', 'out'].includes(k)) throw bad(`sweep.${k}`, 'is not a known field (levels, energies, allocations, methods, layers, out)');
    const fractions = (k: string, lo: string, ok: (x: number) => boolean) => {
      const v = s[k];
      if (v !== undefined && !(Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number' && ok(x)))) throw bad(`sweep.${k}`, `must be a non-empty list of numbers in ${lo}`);
    };
    fractions('levels', '(0, 1)', (x) => x > 0 && x < 1);
    fractions('energies', '(0, 1]', (x) => x > 0 && x <= 1);
    if (s.allocations !== undefined && !(Array.isArray(s.allocations) && s.allocations.every(isSweepAllocation))) {
      throw bad('sweep.allocations', `must be a list of ${SWEEP_ALLOCATIONS.join(', ')}`);
    }
    if (s.methods !== undefined && !(Array.isArray(s.methods) && s.methods.length > 0 && s.methods.every((m) => SWEEP_METHODS.includes(m)))) {
      throw bad('sweep.methods', `must be a non-empty list of ${SWEEP_METHODS.join(', ')}`);
    }
    if (s.layers !== undefined && !(Array.isArray(s.layers) && s.layers.every((x) => typeof x === 'string'))) throw bad('sweep.layers', 'must be a list of layer names or globs');
    if (s.out !== undefined && typeof s.out !== 'string') throw bad('sweep.out', 'must be a folder path');
  }
}

/** Fills defaults; `overrides` (CLI options) win over the file. */
export function resolveTask(file: TaskFile, overrides: Partial<TaskFile> = {}): EvalTask {
  const t: TaskFile = { ...file };
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) (t as Record<string, unknown>)[k] = v;
  const dataset: DatasetSpec | undefined = t.data === undefined ? undefined : {
    data: t.data,
    inputs: t.inputs,
    labels: t.labels,
    preset: t.preset,
    ntu: t.ntu,
    limit: t.limit,
  };
  const latency = t.latency === false ? false : { warmup: t.latency?.warmup ?? 3, runs: t.latency?.runs ?? 20 };
  return {
    model: t.model,
    dataset,
    output: t.output,
    classAxis: t.classAxis,
    metric: t.metric ?? 'top1',
    batchSize: t.batchSize ?? 32,
    ep: t.ep ?? 'cpu',
    threads: t.threads,
    latency,
    sweep: t.sweep ?? {},
  };
}
