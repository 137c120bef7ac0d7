// Where the benchmarks find their data and scripts, whether they run from bench/ (through tsx) or
// as the bundle scripts/bench.mjs writes to out/bench/: from the repository root, the nearest
// folder above with a package.json.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

function repositoryRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

export const ROOT = repositoryRoot(__dirname);
export const BENCH_DIR = join(ROOT, 'bench');
/** Generated models and matrices, kept between runs (git-ignored). */
export const BENCH_DATA = join(BENCH_DIR, '.data');

/** Node's arguments to run this benchmark again in a child process with `args` (its one-case mode). */
export function rerunArgs(...args: string[]): string[] {
  const self = process.argv[1];
  return [...(self.endsWith('.ts') ? ['--import', 'tsx'] : []), self, ...args];
}
