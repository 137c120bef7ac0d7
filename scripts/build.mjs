// One esbuild entry per runtime: the extension host and the CLI run in Node (CommonJS, one
// file each, so activation loads fast); each worker thread (spectra, factorization, ONNX Runtime)
// is its own file because worker_threads needs a path; webviews are browser bundles.
import { pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

export const node = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: !production,
  minify: production,
  // Native addon and the editor API are resolved at run time, never bundled.
  external: ['vscode', 'onnxruntime-node'],
  // jsonc-parser's `main` is a UMD build whose inner requires esbuild cannot follow; its ES build bundles.
  alias: { 'jsonc-parser': 'jsonc-parser/lib/esm/main.js' },
  logLevel: 'info',
};

/** The worker threads' entries: each bundle finds them next to itself (linalg/workerPool.ts workerEntry). */
export const workers = {
  'spectra-worker': 'src/core/linalg/spectraWorker.ts',
  'factor-worker': 'src/core/compress/factorWorker.ts',
  'ort-worker': 'src/core/eval/ortWorker.ts',
};

const entries = [
  { ...node, entryPoints: { extension: 'src/extension/extension.ts' }, outdir: 'dist' },
  { ...node, entryPoints: { cli: 'src/cli/main.ts' }, outdir: 'dist', banner: { js: '#!/usr/bin/env node' } },
  ...Object.entries(workers).map(([name, file]) => ({ ...node, entryPoints: { [name]: file }, outdir: 'dist' })),
  {
    bundle: true,
    platform: 'browser',
    target: 'es2022',
    format: 'iife',
    sourcemap: !production,
    minify: production,
    entryPoints: {
      spectrum: 'webview/spectrum/main.ts',
      tradeoff: 'webview/tradeoff/main.ts',
      overview: 'webview/overview/main.ts',
      finetune: 'webview/finetune/main.ts',
    },
    outdir: 'dist/webview',
    logLevel: 'info',
  },
];

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (watch) {
    for (const e of entries) (await esbuild.context(e)).watch();
  } else {
    await Promise.all(entries.map((e) => esbuild.build(e)));
  }
}
