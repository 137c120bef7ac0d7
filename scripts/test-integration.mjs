// Extension-host integration tests in a real VS Code without internet: VS Code's server + web
// client from the npm package code-server (scripts/install-code-server.sh), the extension loaded
// in development mode and the suites started through the workbench URL payload
// (extensionDevelopmentPath / extensionTestsPath, as VS Code's own test/integration/browser does),
// driven by playwright-core in Debian's Chromium. The same compiled suites run unchanged under
// @vscode/test-cli + @vscode/test-electron (`npm run test:integration:electron`, .vscode-test.mjs).
// Prints `N passed, N failed` last.
//   --build-only   compile the suites to out/test/integration and stop (for vscode-test)
//   --grep <re>    run only matching tests
// Starting code-server is scripts/code-server.cjs, shared with the e2e suite (test/e2e/codeServer.ts).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as esbuild from 'esbuild';
import { CODE_SERVER, codeServerInstalled, startCodeServer } from './code-server.cjs';

const root = resolve(import.meta.dirname, '..');
const outDir = join(root, 'out', 'test', 'integration');
const chromium = process.env.RANKSCOPE_CHROMIUM ?? '/usr/bin/chromium';
const timeoutMs = Number(process.env.RANKSCOPE_IT_TIMEOUT_S ?? 540) * 1000;
const args = process.argv.slice(2);
const grep = args.includes('--grep') ? args[args.indexOf('--grep') + 1] : undefined;

function finish(passed, failed, note) {
  if (note) console.log(note);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

async function buildSuites() {
  rmSync(outDir, { recursive: true, force: true });
  const dir = join(root, 'test', 'integration');
  const entries = readdirSync(dir).filter((f) => f.endsWith('.test.ts') || f === 'runner.ts');
  await esbuild.build({
    entryPoints: entries.map((f) => join(dir, f)),
    outdir: outDir,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    sourcemap: 'inline',
    external: ['vscode', 'mocha', 'onnxruntime-node'],
    logLevel: 'warning',
  });
}

const t0 = Date.now();
await buildSuites();
if (args.includes('--build-only')) process.exit(0);

if (!codeServerInstalled()) finish(0, 1, `integration: code-server is not installed at ${CODE_SERVER}; run scripts/install-code-server.sh`);
if (!existsSync(chromium)) finish(0, 1, `integration: Chromium not found at ${chromium}`);
if (!existsSync(join(root, 'dist', 'extension.js')) && existsSync(join(root, 'src', 'extension', 'extension.ts'))) {
  const b = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { stdio: 'inherit', cwd: root });
  if (b.status !== 0) finish(0, 1, 'integration: build failed');
}

const tmp = mkdtempSync(join(tmpdir(), 'rankscope-it-'));
const workspace = join(tmp, 'workspace');
const userData = join(tmp, 'user-data');
const resultsFile = join(tmp, 'results.json');
mkdirSync(workspace, { recursive: true });
const server = await startCodeServer({
  tmp, workspace, userData, extensions: join(tmp, 'extensions'),
  logLevel: 'warn',
  env: { RANKSCOPE_IT_RESULTS: resultsFile, RANKSCOPE_IT_GREP: grep ?? '', RANKSCOPE_IT_WORKSPACE: workspace },
  onOutput: (text) => {
    for (const line of text.split('\n')) if (line.trim()) console.log(`[server] ${line}`);
  },
}).catch((e) => finish(0, 1, `integration: ${e.message}`));
const { port } = server;

const { chromium: pw } = await import('playwright-core');
const browser = await pw.launch({
  executablePath: chromium,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));

const exited = new Promise((res) => {
  page.exposeFunction('codeAutomationLog', (type, logArgs) => {
    console.log(...(Array.isArray(logArgs) ? logArgs : [logArgs]).map((a) => (typeof a === 'string' ? a : JSON.stringify(a))));
  });
  page.exposeFunction('codeAutomationExit', (code) => res(code));
});
const remote = (p) => `vscode-remote://127.0.0.1:${port}${p}`;
const payload = JSON.stringify([
  ['extensionDevelopmentPath', remote(root)],
  ['extensionTestsPath', remote(join(outDir, 'runner.js'))],
  ['skipWelcome', 'true'],
]);
const url = `${server.url}&payload=${encodeURIComponent(payload)}`;
console.log(`integration: VS Code ${'1.100'} (code-server) at 127.0.0.1:${port}, workspace ${workspace}`);
await page.goto(url);

const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), timeoutMs))]);
if (code === 'timeout') {
  mkdirSync(join(root, 'test-artifacts'), { recursive: true });
  await page.screenshot({ path: join(root, 'test-artifacts', 'integration-timeout.png') }).catch(() => {});
}
await browser.close().catch(() => {});
server.stop();

const seconds = ((Date.now() - t0) / 1000).toFixed(1);
if (!existsSync(resultsFile)) finish(0, 1, `integration: no results (${code === 'timeout' ? `timed out after ${timeoutMs / 1000} s` : `exit code ${code}`}); ${seconds} s`);
const results = JSON.parse(readFileSync(resultsFile, 'utf8'));
for (const o of results.outcomes) {
  console.log(`${o.state === 'passed' ? '✔' : o.state === 'failed' ? '✖' : '-'} ${o.title} (${o.ms} ms)`);
  if (o.error) console.log(o.error.split('\n').slice(0, 8).map((l) => `    ${l}`).join('\n'));
}
if (results.metrics) console.log(`integration: metrics ${JSON.stringify(results.metrics)}`);
rmSync(tmp, { recursive: true, force: true });
const passed = results.outcomes.filter((o) => o.state === 'passed').length;
const failed = results.outcomes.filter((o) => o.state === 'failed').length;
finish(passed, failed, `integration: suites ${results.seconds.toFixed(1)} s, total ${seconds} s (build + VS Code start + suites)`);
