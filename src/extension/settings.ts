// Typed access to the `rankscope.*` settings declared in package.json (contributes.configuration).
import * as vscode from 'vscode';

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
  };
}

function clamp(x: number, lo: number, hi: number): number {
  return Number.isFinite(x) ? Math.min(hi, Math.max(lo, x)) : 0.95;
}
