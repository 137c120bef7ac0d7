// End to end, as a person does it: code-server (a real VS Code 1.100) with the packaged Rankscope
// .vsix installed, driven by Playwright in Debian's Chromium. Seven steps, in order, each saving a
// screenshot to test-artifacts/e2e/. Expected layer facts come from numpy (the fixture), never
// from Rankscope's own code.
//
// Env (set by scripts/test-e2e.mjs): RANKSCOPE_E2E_VSIX = the .vsix to install; or
// RANKSCOPE_E2E_DEV=1 to load the working tree as a development extension instead (no package yet).
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, FrameLocator, Locator, Page } from 'playwright-core';
import { launchChromium } from './harness';
import { codeServerInstalled, installVsix, ROOT, startCodeServer, type CodeServer } from './codeServer';
import { makeFixture, type Fixture } from '../integration/fixtures';
import { runPython } from '../helpers/python';

const ARTIFACTS = join(ROOT, 'test-artifacts', 'e2e');
const vsix = process.env.RANKSCOPE_E2E_VSIX;
const devMode = process.env.RANKSCOPE_E2E_DEV === '1';

let tmp: string;
let workspace: string;
let fixture: Fixture;
let server: CodeServer | undefined;
let browser: Browser | undefined;
let page: Page;
let failedStep: string | undefined;

/** Runs the steps in order; once one fails the later ones are skipped (they depend on it). */
function step(name: string, fn: () => Promise<void>): void {
  test(name, async (t: TestContext) => {
    if (failedStep) { t.skip(`after failed step: ${failedStep}`); return; }
    try {
      await fn();
    } catch (e) {
      failedStep = name;
      await page?.screenshot({ path: join(ARTIFACTS, `failed-step-${name.split(' ')[0]}.png`) }).catch(() => {});
      throw e;
    }
  });
}

const shot = (file: string): Promise<Buffer> => page.screenshot({ path: join(ARTIFACTS, file) });

/** Numbers as the tree prints them, written out independently: 8192 → 8.19K, 640 → 640. */
function count(n: number): string {
  if (n < 1000) return String(n);
  const [v, unit] = n >= 1e6 ? [n / 1e6, 'M'] : [n / 1e3, 'K'];
  return `${Number(v.toPrecision(3))}${unit}`;
}

const leafName = (layer: string): string => layer.split('.').at(-1)!;

/** Tree rows of the Layers view with their accessible names (`label description`). */
function layersTree(): Locator {
  return page.locator('.pane').filter({ has: page.locator('.pane-header', { hasText: /^\s*Layers/i }) }).getByRole('treeitem');
}

async function treeLabels(): Promise<string[]> {
  return layersTree().evaluateAll((rows) => rows.map((r) => r.getAttribute('aria-label') ?? ''));
}

/** The inner frame of the webview that contains `testId` (webviews live in nested iframes). */
async function webviewWith(testId: string, timeoutMs = 60_000): Promise<FrameLocator> {
  const t0 = Date.now();
  for (;;) {
    const n = await page.locator('iframe.webview.ready').count();
    for (let i = 0; i < n; i++) {
      const inner = page.frameLocator(`iframe.webview.ready >> nth=${i}`).frameLocator('#active-frame');
      if (await inner.getByTestId(testId).count().catch(() => 0)) return inner;
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`no webview shows [data-testid=${testId}] after ${timeoutMs / 1000} s`);
    await page.waitForTimeout(250);
  }
}

async function runCommand(title: string): Promise<void> {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor();
  await input.fill(`>${title}`);
  await page.locator('.quick-input-widget').getByRole('option', { name: new RegExp(title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) }).first().click();
}

/** Explorer → right-click the file → Open Model… (opens it in the Layers tree). */
async function openFromExplorer(file: string): Promise<void> {
  await page.getByRole('tab', { name: /^Explorer/ }).click();
  await page.getByRole('treeitem', { name: file }).click({ button: 'right' });
  await page.getByRole('menuitem', { name: /^Open Model…/ }).click();
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  if (!codeServerInstalled()) throw new Error('code-server is not installed: run scripts/install-code-server.sh');
  if (!vsix && !devMode) throw new Error('set RANKSCOPE_E2E_VSIX (scripts/test-e2e.mjs does) or RANKSCOPE_E2E_DEV=1');
  tmp = mkdtempSync(join(tmpdir(), 'rankscope-e2e-'));
  workspace = join(tmp, 'workspace');
  mkdirSync(workspace);
  fixture = makeFixture(workspace);
  writeFileSync(join(workspace, 'rankscope.json'), JSON.stringify({
    data: 'data.npz', limit: 64, latency: false,
    sweep: { levels: [0.3, 0.6], allocations: ['energy', 'uniform'], energies: [0.95] },
  }, null, 2));
  const dirs = { userData: join(tmp, 'user-data'), extensions: join(tmp, 'extensions') };
  if (vsix) {
    const installed = installVsix(vsix, dirs);
    assert.ok(installed.some((id) => /^rankscope\.rankscope@/.test(id)), `the .vsix did not install: ${installed.join(', ')}`);
  }
  server = await startCodeServer({ tmp, workspace, ...dirs });
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1400, height: 880 } });
  page.setDefaultTimeout(30_000);
  let url = server.url;
  if (!vsix) {
    const remote = (p: string): string => `vscode-remote://${new URL(server!.url).host}${p}`;
    url += `&payload=${encodeURIComponent(JSON.stringify([['extensionDevelopmentPath', remote(ROOT)], ['skipWelcome', 'true']]))}`;
  }
  await page.goto(url);
});

after(async () => {
  await browser?.close().catch(() => {});
  server?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('Rankscope in VS Code (code-server)', () => {
  step('1 opens a workspace with the model', async () => {
    await page.locator('.monaco-workbench').waitFor({ timeout: 90_000 });
    await page.getByRole('treeitem', { name: 'model.onnx' }).waitFor({ timeout: 60_000 });
    await shot('01-workspace.png');
  });

  step('2 opens the Rankscope container and the model', async () => {
    await page.getByRole('tab', { name: /^Rankscope/ }).click();
    await page.getByRole('button', { name: 'Open Model…' }).or(page.getByText('No model is open')).first().waitFor();
    await shot('02-container-welcome.png');
    await openFromExplorer('model.onnx');
    await layersTree().first().waitFor();
    assert.match((await treeLabels())[0]!, /^model\.onnx /);
  });

  step('3 shows the layers, their counts and descriptions', async () => {
    // Descriptions gain `r95 N` once the spectra are in (worker threads): wait for all of them.
    const expected = fixture.layers.map((l) => `${leafName(l.name)} ${l.shape[0]}×${l.shape[1]} · ${count(l.params)} · r95 ${l.r95}`);
    await page.waitForFunction((n) => [...document.querySelectorAll('[role="treeitem"]')]
      .filter((r) => / · r95 \d+$/.test(r.getAttribute('aria-label') ?? '')).length >= n, expected.length, { timeout: 60_000 });
    const labels = await treeLabels();
    const leaves = labels.filter((l) => /\d+×\d+ · /.test(l));
    assert.deepEqual(leaves, expected);
    const total = fixture.totalParams;
    assert.equal(labels[0], `model.onnx ${count(total)} params`);
    // Group rows: `layers.0  2 · 16.4K` (layer count · parameters).
    const group = layersTree().filter({ has: page.locator('.label-name', { hasText: /^layers\.0$/ }) }).first();
    assert.equal(await group.locator('.label-description').textContent(), `2 · ${count(fixture.layers[0]!.params + fixture.layers[1]!.params)}`);
    await shot('03-layers.png');
  });

  const target = (): Fixture['layers'][number] => fixture.layers[1]!; // encoder.layers.0.fc2, 64×128

  step('4 right-click a layer → Compress Layer… → energy 95 %', async () => {
    const t = target();
    const row = layersTree().filter({ hasText: `${t.shape[0]}×${t.shape[1]}` }).filter({ has: page.getByText(leafName(t.name), { exact: true }) }).first();
    await row.click({ button: 'right' });
    await page.getByRole('menuitem', { name: /^Compress Layer…/ }).click();
    const pick = page.locator('.quick-input-widget').getByRole('option', { name: /energy 95 %/ });
    await pick.waitFor();
    await shot('04-compress-quickpick.png');
    await pick.click();
    // The output name box, pre-filled with model.rankscope.onnx: accept it.
    const input = page.locator('.quick-input-widget input');
    await page.waitForFunction(() => (document.querySelector('.quick-input-widget input') as HTMLInputElement | null)?.value.endsWith('.onnx'));
    assert.match(await input.inputValue(), /model\.rankscope\.onnx$/);
    await input.press('Enter');
  });

  step('5 writes the new file; the tree shows the compressed layer with its rank', async () => {
    const out = join(workspace, 'model.rankscope.onnx');
    const t = target();
    await page.waitForFunction((name) => [...document.querySelectorAll('[role="treeitem"]')]
      .some((r) => (r.getAttribute('aria-label') ?? '').startsWith(name)), 'model.rankscope.onnx', { timeout: 60_000 });
    assert.ok(existsSync(out), `${out} was not written`);
    // The new file is a valid ONNX model holding the factor pair at the numpy 95 % rank.
    const check = JSON.parse(runPython(String.raw`
import json, sys, onnx
m = onnx.load(sys.argv[1]); onnx.checker.check_model(m)
meta = {p.key: p.value for p in m.metadata_props}
print(json.dumps(json.loads(meta.get("rankscope.compressed", "[]"))))`, [out])) as { layer: string; rank: number }[];
    assert.deepEqual(check.map((c) => [c.layer, c.rank]), [[t.name, t.r95]]);
    const k = t.r95;
    const [m, n] = t.shape;
    const want = `${leafName(t.name)} ${m}×${n} · ${count(m * n)} → ${count(k * (m + n))} · rank ${k}`;
    await page.waitForFunction((w) => [...document.querySelectorAll('[role="treeitem"]')].some((r) => r.getAttribute('aria-label') === w), want);
    await shot('05-compressed-tree.png');
  });

  step('6 the spectrum panel draws one point per singular value', async () => {
    const head = fixture.layers.at(-1)!; // 10×64 → 10 singular values
    await layersTree().filter({ has: page.getByText('head', { exact: true }) }).first().click();
    const view = await webviewWith('spectrum-chart');
    const chart = view.getByTestId('spectrum-chart');
    await assert.doesNotReject(chart.waitFor());
    await view.locator(`[data-testid="spectrum-chart"][data-focus-points="${head.sv.length}"]`).waitFor();
    assert.equal(await chart.getAttribute('data-drawn-points'), String(head.sv.length));
    assert.equal(await view.getByTestId('energy').textContent(), `energy kept ${(100 * energyAt(head.sv, head.r95)).toFixed(2)} %`);
    await shot('06-spectrum.png');
  });

  step('7 the trade-off view shows points as they are measured', async () => {
    // The sweep compresses the original model at several budgets: open it again first.
    await openFromExplorer('model.onnx');
    await page.waitForFunction(() => (document.querySelector('[role="treeitem"]')?.getAttribute('aria-label') ?? '').startsWith('model.onnx '));
    await runCommand('Rankscope: Show Accuracy/Size Trade-off');
    const view = await webviewWith('tradeoff-chart');
    const chart = view.getByTestId('tradeoff-chart');
    await view.locator('[data-testid="tradeoff-chart"]:not([data-drawn-points="0"])').waitFor({ timeout: 180_000 });
    await shot('07-tradeoff-streaming.png');
    await view.getByText(/Sweep (finished|failed|cancelled)/).waitFor({ timeout: 240_000 });
    const status = await view.locator('.status').textContent();
    assert.match(status ?? '', /Sweep finished: \d+ points\./);
    const drawn = Number(await chart.getAttribute('data-drawn-points'));
    const rows = await view.locator('[data-testid="points"] tbody tr').count();
    assert.ok(drawn > 0 && drawn === rows, `drawn ${drawn}, table rows ${rows}`);
    await shot('07-tradeoff.png');
  });
});

/** Fraction of Σσ² in the top k (from numpy's σ). */
function energyAt(sv: number[], k: number): number {
  const total = sv.reduce((a, s) => a + s * s, 0);
  return sv.slice(0, k).reduce((a, s) => a + s * s, 0) / total;
}
