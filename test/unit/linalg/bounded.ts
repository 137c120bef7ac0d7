// Solver calls under a time bound (see solverChild.ts): a hang fails the test instead of blocking the run.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { SolverCall, SolverResult } from './solverChild';

/** How long one batch of calls may take (ms); the largest case here needs well under 2 s. */
export const SOLVER_TIMEOUT_MS = 30_000;

export function solveBounded(data: Float32Array | Float64Array, rows: number, cols: number, calls: SolverCall[], timeoutMs = SOLVER_TIMEOUT_MS): SolverResult[] {
  const request = { rows, cols, dtype: data instanceof Float32Array ? 'float32' : 'float64', calls };
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, 'solverChild.ts'), JSON.stringify(request)], {
    input: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), timeout: timeoutMs, maxBuffer: 1 << 30, killSignal: 'SIGKILL',
  });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT' || r.signal === 'SIGKILL') {
    throw new Error(`the solver did not return within ${timeoutMs / 1000} s on a ${rows}×${cols} matrix (hang)`);
  }
  if (r.status !== 0) throw new Error(`solver process failed (${r.status}): ${r.stderr.toString()}`);
  return JSON.parse(r.stdout.toString()) as SolverResult[];
}
