// `npm test`: every suite in order, then one closing line the CI reads: `N passed, N failed, N skipped`.
// Stages: lint (ESLint: the house rules), build, unit (node:test, plain Node), python worker (unittest under the PyTorch interpreter),
// extension-host integration and end-to-end (a real VS Code: code-server + Chromium).
// Set RANKSCOPE_TEST_ONLY=unit,python to run a subset.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { testPython } from './python.mjs';

function findFiles(dir, suffix) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? findFiles(p, suffix) : p.endsWith(suffix) ? [p] : [];
  }).sort();
}

function run(cmd, args, env = {}) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env }, maxBuffer: 1 << 30 });
  const out = r.stdout?.toString() ?? '';
  process.stdout.write(out);
  return { out, status: r.status ?? 1 };
}

const stages = [
  {
    name: 'lint',
    run: () => {
      const r = run(process.execPath, ['node_modules/eslint/bin/eslint.js', '--max-warnings=0', '.']);
      return { passed: r.status === 0 ? 1 : 0, failed: r.status === 0 ? 0 : 1 };
    },
  },
  {
    name: 'build',
    run: () => {
      const r = run(process.execPath, ['scripts/build.mjs']);
      return { passed: r.status === 0 ? 1 : 0, failed: r.status === 0 ? 0 : 1 };
    },
  },
  {
    name: 'unit',
    run: () => {
      const files = findFiles('test/unit', '.test.ts');
      const r = run(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files]);
      const pass = Number(/ℹ pass (\d+)/.exec(r.out)?.[1] ?? 0);
      const fail = Number(/ℹ fail (\d+)/.exec(r.out)?.[1] ?? 0);
      const skipped = Number(/ℹ skipped (\d+)/.exec(r.out)?.[1] ?? 0) + Number(/ℹ todo (\d+)/.exec(r.out)?.[1] ?? 0);
      return { passed: pass, failed: fail || (r.status !== 0 && pass === 0 ? 1 : 0), skipped };
    },
  },
  {
    name: 'python',
    run: () => {
      if (!existsSync('test/python')) return { passed: 0, failed: 0 };
      const r = spawnSync(testPython(), ['-m', 'unittest', 'discover', '-s', 'test/python', '-p', 'test_*.py', '-v'], {
        stdio: ['ignore', 'inherit', 'pipe'], env: process.env, maxBuffer: 1 << 30,
      });
      const err = r.stderr?.toString() ?? '';
      process.stderr.write(err);
      const ran = Number(/Ran (\d+) test/.exec(err)?.[1] ?? 0);
      const m = /FAILED \(([^)]*)\)/.exec(err);
      const count = (k) => Number(new RegExp(`${k}=(\\d+)`).exec(m?.[1] ?? '')?.[1] ?? 0);
      const failed = count('failures') + count('errors') || (r.status !== 0 ? 1 : 0);
      const skipped = Number(/OK \(skipped=(\d+)\)/.exec(err)?.[1] ?? 0) || count('skipped');
      return { passed: ran - failed - skipped, failed, skipped };
    },
  },
  ...['integration', 'e2e'].map((name) => ({
    name,
    run: () => {
      const script = `scripts/test-${name}.mjs`;
      if (!existsSync(script)) return { passed: 0, failed: 0 };
      const r = run(process.execPath, [script]);
      const m = /(\d+) passed, (\d+) failed(?:, (\d+) skipped)?/.exec(r.out);
      if (!m) return { passed: 0, failed: 1 };
      return { passed: Number(m[1]), failed: Number(m[2]) || (r.status !== 0 ? 1 : 0), skipped: Number(m[3] ?? 0) };
    },
  })),
];

const named = process.env.RANKSCOPE_TEST_ONLY?.split(',').filter(Boolean);
const only = named?.length ? named : undefined;
let passed = 0;
let failed = 0;
let skipped = 0;
for (const stage of stages) {
  if (only && !only.includes(stage.name)) continue;
  const t0 = Date.now();
  console.log(`\n=== ${stage.name} ===`);
  const r = { skipped: 0, ...stage.run() };
  console.log(`=== ${stage.name}: ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped (${((Date.now() - t0) / 1000).toFixed(1)} s) ===`);
  passed += r.passed;
  failed += r.failed;
  skipped += r.skipped;
}
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
// A run that executed nothing is a broken run, not a green one.
process.exit(failed || passed === 0 ? 1 : 0);
