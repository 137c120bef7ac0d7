// Typed access to the `rankscope.*` settings declared in package.json (contributes.configuration).
import * as vscode from 'vscode';
import { RankscopeError } from '../core/errors';
import { parseGpus, type ProcessesOptions } from '../worker/distributed';

export type SortOrder = 'module' | 'params' | 'compressibility';

export interface Settings {
  pythonInterpreter: string;
  device: 'auto' | 'cpu' | 'cuda' | 'mps';
  defaultEnergy: number;
  evalBatchSize: number;
  executionProvider: 'cpu' | 'cuda';
  cacheLocation: string;
  cacheMaxSizeMB: number;
  sortBy: SortOrder;
  /** rankscope.finetune.processes / .gpus: how many worker processes, on which GPUs. */
  finetuneProcesses: number;
  finetuneGpus: string;
}

export function settings(): Settings {
  const c = vscode.workspace.getConfiguration('rankscope');
  return {
    pythonInterpreter: c.get<string>('python.interpreter', '').trim(),
    device: c.get('device', 'auto'),
    defaultEnergy: clamp(c.get<number>('compress.defaultEnergy', 0.95), 0.5, 0.9999),
    evalBatchSize: Math.max(1, Math.floor(c.get<number>('eval.batchSize', 64))),
    executionProvider: c.get('eval.executionProvider', 'cpu'),
    cacheLocation: c.get<string>('cache.location', '').trim(),
    cacheMaxSizeMB: Math.max(0, c.get<number>('cache.maxSizeMB', 512)),
    sortBy: c.get<SortOrder>('layers.sortBy', 'module'),
    finetuneProcesses: c.get<number>('finetune.processes', 1),
    finetuneGpus: c.get<string>('finetune.gpus', '').trim(),
  };
}

/** The fine-tuning worker's processes from the settings (checked with the request, by finetune()). */
export function finetuneProcesses(s: Settings = settings()): ProcessesOptions {
  let gpus: number[] | undefined;
  try {
    gpus = s.finetuneGpus ? parseGpus(s.finetuneGpus) : undefined;
  } catch {
    throw new RankscopeError('BAD_ARGUMENT', `The setting rankscope.finetune.gpus must list distinct CUDA device indices, e.g. 0,1; it is '${s.finetuneGpus}'.`);
  }
  const nproc = s.finetuneProcesses !== 1 ? s.finetuneProcesses : undefined; // 1 = the default: one plain process, or one per GPU
  return { ...(nproc !== undefined ? { nproc } : {}), ...(gpus ? { gpus } : {}) };
}

function clamp(x: number, lo: number, hi: number): number {
  return Number.isFinite(x) ? Math.min(hi, Math.max(lo, x)) : 0.95;
}
