// Extension-tests entry for VS Code's server + web client (code-server), loaded through the
// workbench URL payload `extensionTestsPath`. It runs the same compiled suites @vscode/test-cli
// runs (out/test/integration/*.test.js, mocha `tdd`), and writes the outcome of every test as
// JSON to $RANKSCOPE_IT_RESULTS for scripts/test-integration.mjs to count.
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Mocha from 'mocha';

interface Outcome { title: string; state: 'passed' | 'failed' | 'pending'; ms: number; error?: string }

export async function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'tdd', color: false, timeout: 120_000, reporter: 'spec' });
  const grep = process.env.RANKSCOPE_IT_GREP;
  if (grep) mocha.grep(grep);
  for (const f of readdirSync(__dirname).filter((n) => n.endsWith('.test.js')).sort()) mocha.addFile(join(__dirname, f));
  const outcomes: Outcome[] = [];
  const t0 = Date.now();
  const failures = await new Promise<number>((resolve) => {
    const runner = mocha.run(resolve);
    runner.on('pass', (t) => outcomes.push({ title: t.fullTitle(), state: 'passed', ms: t.duration ?? 0 }));
    runner.on('fail', (t, err) => outcomes.push({ title: t.fullTitle(), state: 'failed', ms: t.duration ?? 0, error: String(err?.stack ?? err) }));
    runner.on('pending', (t) => outcomes.push({ title: t.fullTitle(), state: 'pending', ms: 0 }));
  });
  const out = process.env.RANKSCOPE_IT_RESULTS;
  if (out) writeFileSync(out, JSON.stringify({ seconds: (Date.now() - t0) / 1000, failures, outcomes, metrics: (globalThis as { rankscopeMetrics?: unknown }).rankscopeMetrics }, null, 2));
  if (failures > 0) throw new Error(`${failures} integration test(s) failed.`);
}
