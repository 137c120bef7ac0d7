// Runs solver calls in a process of their own, so that a test can put a time bound on them: a
// synchronous hang (the failure this guards against) cannot be interrupted from inside the
// test's own process. argv[2]: JSON SolverRequest; stdin: the matrix (little-endian float32/64).
import { readFileSync } from 'node:fs';
import { singularValues, singularValuesJacobi, singularValuesViaGram, type SolverLimits } from '../../../src/core/linalg/singularValues';
import { topSingularTriplets, tripletsViaGram, tripletsViaJacobi, type EigenvectorRoute } from '../../../src/core/linalg/triplets';

export interface SolverRequest {
  rows: number;
  cols: number;
  dtype: 'float32' | 'float64';
  calls: SolverCall[];
}

export type SolverCall =
  | { kind: 'values'; route: 'default' | 'gram' | 'jacobi'; limits?: SolverLimits }
  | { kind: 'triplets'; route: 'default' | 'jacobi' | EigenvectorRoute; k: number; limits?: SolverLimits };

export interface SolverResult {
  s: number[];
  u?: number[];
  v?: number[];
}

function run(req: SolverRequest, data: Float32Array | Float64Array): SolverResult[] {
  const { rows, cols } = req;
  return req.calls.map((call): SolverResult => {
    if (call.kind === 'values') {
      const s = call.route === 'default' ? singularValues(data, rows, cols)
        : call.route === 'gram' ? singularValuesViaGram(data, rows, cols, call.limits)
          : singularValuesJacobi(data, rows, cols, call.limits);
      return { s: Array.from(s) };
    }
    const t = call.route === 'default' ? topSingularTriplets(data, rows, cols, call.k)
      : call.route === 'jacobi' ? tripletsViaJacobi(data, rows, cols, call.k, call.limits)
        : tripletsViaGram(data, rows, cols, call.k, call.route, call.limits);
    return { s: Array.from(t.s), u: Array.from(t.u), v: Array.from(t.v) };
  });
}

if (process.argv[2]) {
  const req = JSON.parse(process.argv[2]) as SolverRequest;
  const bytes = readFileSync(0);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const data = req.dtype === 'float32' ? new Float32Array(buffer) : new Float64Array(buffer);
  process.stdout.write(JSON.stringify(run(req, data)));
}
