// End-to-end tests in Debian's Chromium, printing `N passed, N failed` last (scripts/test-all.mjs
// reads it):
//   test/e2e/webviews.e2e.ts  the four built webviews in the extension's CSP shell (component level)
//   test/e2e/vscode.e2e.ts    code-server with the packaged .vsix installed, driven as a person does
//   test/e2e/walkthrough.e2e.ts  the same, issue 13's walk: sample → tree → spectrum → compress →
//                             trade-off → fine-tune → restore (screenshots in test-artifacts/e2e/walkthrough/)
// The .vsix comes from `npm run package` (scripts/package.mjs) unless RANKSCOPE_E2E_VSIX names one;
// RANKSCOPE_E2E_DEV=1 loads the working tree as a development extension instead (quick iteration;
// the run then says so). code-server is installed by scripts/install-code-server.sh when missing.
//   node scripts/test-e2e.mjs [--only webviews|vscode|walkthrough]
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { codeServerInstalled } from './code-server.cjs';

const root = resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
const t0 = Date.now();
const seconds = (t) => ((Date.now() - t) / 1000).toFixed(1);

function finish(passed, failed, note) {
  if (note) console.log(note);
  console.log(`e2e: ${seconds(t0)} s in all`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

const env = { ...process.env };
const files = [];
if (!only || only === 'webviews') {
  if (!existsSync(join(root, 'dist', 'webview', 'spectrum.js'))) {
    const b = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: root, stdio: 'inherit' });
    if (b.status !== 0) finish(0, 1, 'e2e: build failed');
  }
  files.push('test/e2e/webviews.e2e.ts');
}
if (!only || only === 'vscode' || only === 'walkthrough') {
  if (!codeServerInstalled()) {
    console.log('e2e: installing code-server (scripts/install-code-server.sh)…');
    const r = spawnSync('bash', ['scripts/install-code-server.sh'], { cwd: root, stdio: 'inherit' });
    if (r.status !== 0) finish(0, 1, 'e2e: code-server install failed');
  }
  if (!env.RANKSCOPE_E2E_VSIX && env.RANKSCOPE_E2E_DEV !== '1') {
    const tp = Date.now();
    const r = spawnSync(process.execPath, ['scripts/package.mjs'], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
    if (r.status !== 0) {
      process.stdout.write(r.stdout ?? '');
      finish(0, 1, 'e2e: `npm run package` failed; no .vsix to install');
    }
    const out = join(root, 'out');
    const newest = readdirSync(out).filter((f) => f.endsWith('.vsix'))
      .map((f) => join(out, f)).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
    if (!newest) finish(0, 1, 'e2e: `npm run package` wrote no .vsix under out/');
    env.RANKSCOPE_E2E_VSIX = newest;
    console.log(`e2e: packaged ${newest} (${(statSync(newest).size / 2 ** 20).toFixed(1)} MiB) in ${seconds(tp)} s`);
  }
  if (only !== 'walkthrough') files.push('test/e2e/vscode.e2e.ts');
  if (only !== 'vscode') files.push('test/e2e/walkthrough.e2e.ts');
}

let passed = 0;
let failed = 0;
for (const file of files) {
  const tf = Date.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', file], {
    cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 1 << 28,
  });
  process.stdout.write(r.stdout ?? '');
  const pass = Number(/ℹ pass (\d+)/.exec(r.stdout ?? '')?.[1] ?? 0);
  const fail = Number(/ℹ fail (\d+)/.exec(r.stdout ?? '')?.[1] ?? 0) || (r.status !== 0 && pass === 0 ? 1 : 0);
  const skipped = Number(/ℹ skipped (\d+)/.exec(r.stdout ?? '')?.[1] ?? 0);
  // Not in the `N passed, N failed` form: test-all.mjs reads the first such line as the total.
  console.log(`e2e: ${file}: ${pass} pass, ${fail} fail, ${skipped} skipped (${seconds(tf)} s)`);
  passed += pass;
  // A skipped step only happens after a failed one, which is already counted.
  failed += fail;
}
finish(passed, failed, 'e2e: screenshots in test-artifacts/e2e/');
