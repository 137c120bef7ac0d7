// `npm run bench:NAME`: bundles bench/NAME.bench.ts, with the worker threads beside it, into
// out/bench/ and runs it there, so a benchmark times the code as the CLI and the extension ship it.
// Through tsx each worker thread would first compile its TypeScript (about 0.1–0.2 s per worker,
// at every pool start), which the shipped bundles never do.
import { spawnSync } from 'node:child_process';
import * as esbuild from 'esbuild';
import { node, workers } from './build.mjs';

const [name, ...args] = process.argv.slice(2);
if (!name) {
  console.error('usage: node scripts/bench.mjs NAME [args]   (bench/NAME.bench.ts)');
  process.exit(2);
}
const outdir = 'out/bench';
await esbuild.build({ ...node, entryPoints: { [name]: `bench/${name}.bench.ts`, ...workers }, outdir, logLevel: 'warning' });
const r = spawnSync(process.execPath, ['--enable-source-maps', `${outdir}/${name}.js`, ...args], { stdio: 'inherit' });
process.exit(r.status ?? 1);
