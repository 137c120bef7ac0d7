// End to end, as a person does it: code-server (a real VS Code 1.100) with the packaged Rankscope
// .vsix installed, driven by Playwright in Debian's Chromium. Seven steps, in order, each saving a
// screenshot to test-artifacts/e2e/. Expected layer facts come from numpy run on the model file, never
// from Rankscope's own code.
//
// Env (set by scripts/test-e2e.mjs): RANKSCOPE_E2E_VSIX = the .vsix to install; or
// RANKSCOPE_E2E_DEV=1 to load the working tree as a development extension instead (no package yet).
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, FrameLocator, Locator, Page } from 'playwright-core';
import { launchChromium } from './harness';
import { codeServerInstalled, installVsix, ROOT, startCodeServer, type CodeServer } from './codeServer';
import { makeFixture } from '../integration/fixtures';
import { runPython } from '../helpers/python';

const ARTIFACTS = join(ROOT, 'test-artifacts', 'e2e');
const vsix = process.env.RANKSCOPE_E2E_VSIX;
const devMode = process.env.RANKSCOPE_E2E_DEV === '1';

let tmp: string;
let workspace: string;
let model: E2EModel;
let server: CodeServer | undefined;
let browser: Browser | undefined;
let page: Page;
let failedStep: string | undefined;

interface ExpectedLayer { name: string; shape: [number, number]; params: number; sv: number[]; r95: number }
interface E2EModel {
  /** File name in the workspace. */
  file: string;
  layers: ExpectedLayer[];
  totalParams: number;
  /** Where it came from, for the log. */
  source: string;
}

// The layers a person expects to see, computed by numpy straight from the ONNX file: every
// MatMul/Gemm/Conv whose weight is an initializer, as its [out, in] matrix; named by the
// initializer (`net.1.weight` → `net.1`) unless that is opaque (`onnx::MatMul_12`), then by the
// node's module path (`/encoder/layers.0/fc1/MatMul` → `encoder.layers.0.fc1`).
const REFERENCE = String.raw`
import json, sys, numpy as np, onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
inits = {i.name: i for i in m.graph.initializer}
total = sum(int(np.prod(i.dims)) for i in m.graph.initializer if i.data_type != onnx.TensorProto.STRING)
for n in m.graph.node:  # Constant nodes hold parameters too (strings do not count)
    for a in n.attribute:
        if n.op_type == "Constant" and a.name == "value" and a.t.data_type != onnx.TensorProto.STRING:
            total += int(np.prod(a.t.dims))
layers = []
for n in m.graph.node:
    if n.op_type not in ("MatMul", "Gemm", "Conv") or len(n.input) < 2 or n.input[1] not in inits:
        continue
    w = numpy_helper.to_array(inits[n.input[1]]).astype(np.float64)
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
    if n.op_type == "MatMul":
        if w.ndim != 2: continue
        mat = w.T
    elif n.op_type == "Gemm":
        mat = w if attrs.get("transB", 0) else w.T
    else:
        if attrs.get("group", 1) != 1: continue
        mat = w.reshape(w.shape[0], -1)
    wname = n.input[1]
    if not wname.startswith("onnx::") and wname.endswith(".weight"):
        name = wname[: -len(".weight")]
    else:
        # PyTorch scopes: a called Sequential repeats its name (/blocks/blocks.0/tconv -> blocks.0.tconv)
        parts = n.name.strip("/").split("/")[:-1]
        name = ".".join(p for i, p in enumerate(parts) if not (i + 1 < len(parts) and parts[i + 1].startswith(p + ".")))
    s = np.linalg.svd(mat, compute_uv=False)
    e = np.cumsum(s ** 2) / np.sum(s ** 2)
    layers.append(dict(name=name, shape=list(mat.shape), params=int(mat.size), sv=s.tolist(), r95=int(np.argmax(e >= 0.95 - 1e-12) + 1)))
print(json.dumps(dict(layers=layers, totalParams=total)))
`;

/** The workspace's model: the sample (media/samples) when there is one, else a generated fixture. */
function prepareModel(workspace: string): E2EModel {
  const samples = join(ROOT, 'media', 'samples');
  const sample = ['skeleton-transformer.onnx', 'skeleton-mlp.onnx'].find((f) => existsSync(join(samples, f)));
  const sweep = { levels: [0.3, 0.6], allocations: ['energy', 'uniform'], energies: [0.95] };
  let file: string;
  let source: string;
  if (sample && existsSync(join(samples, 'skeleton-actions.npz')) && process.env.RANKSCOPE_E2E_FIXTURE !== '1') {
    file = sample;
    source = `media/samples/${sample}`;
    copyFileSync(join(samples, sample), join(workspace, file));
    copyFileSync(join(samples, 'skeleton-actions.npz'), join(workspace, 'skeleton-actions.npz'));
    const input = JSON.parse(runPython('import onnx,sys; print(__import__("json").dumps(onnx.load(sys.argv[1]).graph.input[0].name))', [join(workspace, file)])) as string;
    writeFileSync(join(workspace, 'rankscope.json'), JSON.stringify({
      data: 'skeleton-actions.npz', preset: 'ntu', inputs: { [input]: 'x_test' }, labels: 'y_test', limit: 64, latency: false, sweep,
    }, null, 2));
  } else {
    makeFixture(workspace);
    file = 'model.onnx';
    source = 'generated fixture (test/integration/fixtures.ts)';
    writeFileSync(join(workspace, 'rankscope.json'), JSON.stringify({ data: 'data.npz', limit: 64, latency: false, sweep }, null, 2));
  }
  const ref = JSON.parse(runPython(REFERENCE, [join(workspace, file)])) as { layers: ExpectedLayer[]; totalParams: number };
  return { file, source, ...ref };
}

/** Module path → tree segments; a numeric part stays with its container (`layers.0`). */
function segments(name: string): string[] {
  const out: string[] = [];
  for (const p of name.split('.')) {
    if (/^\d+$/.test(p) && out.length) out[out.length - 1] += `.${p}`;
    else out.push(p);
  }
  return out;
}

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

const stem = (): string => model.file.replace(/\.onnx$/, '');
const shot = (file: string): Promise<Buffer> => page.screenshot({ path: join(ARTIFACTS, file) });

/** Numbers as the tree prints them, written out independently: 8192 → 8.19K, 640 → 640. */
function count(n: number): string {
  if (n < 1000) return String(n);
  const [v, unit] = n >= 1e6 ? [n / 1e6, 'M'] : [n / 1e3, 'K'];
  return `${Number(v.toPrecision(3))}${unit}`;
}

const leafName = (layer: string): string => segments(layer).at(-1)!;

/** Tree rows of the Layers view with their accessible names (`label description`). */
function layersTree(): Locator {
  return page.locator('.pane').filter({ has: page.locator('.pane-header', { hasText: /^\s*Layers/i }) }).getByRole('treeitem');
}

async function treeLabels(): Promise<string[]> {
  return layersTree().evaluateAll((rows) => rows.map((r) => r.getAttribute('aria-label') ?? ''));
}

/** Expands every collapsed group of the Layers tree (a click toggles a group, as a person does). */
async function expandAll(): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const collapsed = layersTree().and(page.locator('[aria-expanded="false"]')).first();
    if (!(await collapsed.count())) return;
    await collapsed.click();
    await page.waitForTimeout(100);
  }
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

/** Fails at once with the message when VS Code shows an error notification (instead of a timeout). */
async function noErrorNotification(): Promise<void> {
  const toast = page.locator('.notification-list-item').filter({ has: page.locator('.codicon-error') }).first();
  if (await toast.count()) throw new Error(`VS Code showed an error: ${await toast.getAttribute('aria-label')}`);
}

/** Polls `ready` (in the page) until true, failing early on an error notification. */
async function waitUntil(what: string, ready: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const t0 = Date.now();
  while (!(await ready())) {
    await noErrorNotification();
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await page.waitForTimeout(500);
  }
}

async function runCommand(title: string): Promise<void> {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor();
  await input.fill(`>${title}`);
  await page.locator('.quick-input-widget').getByRole('option', { name: new RegExp(title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) }).first().click();
}

/** Picks a context-menu entry. Under load the menu can miss a click while it still lays out, so
 *  if it stays open the (now highlighted) entry is taken with Enter, as a keyboard user would. */
async function chooseMenuItem(name: RegExp): Promise<void> {
  const item = page.getByRole('menuitem', { name });
  await item.waitFor();
  await item.click();
  if (await item.isVisible().catch(() => false)) {
    await page.waitForTimeout(500);
    if (await item.isVisible().catch(() => false)) {
      await item.hover();
      await page.keyboard.press('Enter');
    }
  }
  await item.waitFor({ state: 'hidden' });
}

/** Explorer → right-click the file → Open Model… (opens it in the Layers tree). */
async function openFromExplorer(file: string): Promise<void> {
  await page.getByRole('tab', { name: /^Explorer/ }).click();
  // The Explorer re-renders as files appear (the compressed model): let it settle, then aim exactly.
  await page.waitForTimeout(1000);
  const row = page.locator('.explorer-folders-view').getByRole('treeitem', { name: file, exact: true });
  await row.click({ button: 'right' });
  await chooseMenuItem(/^Open Model…/);
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  if (!codeServerInstalled()) throw new Error('code-server is not installed: run scripts/install-code-server.sh');
  if (!vsix && !devMode) throw new Error('set RANKSCOPE_E2E_VSIX (scripts/test-e2e.mjs does) or RANKSCOPE_E2E_DEV=1');
  tmp = mkdtempSync(join(tmpdir(), 'rankscope-e2e-'));
  workspace = join(tmp, 'workspace');
  mkdirSync(workspace);
  model = prepareModel(workspace);
  console.log(`e2e: model ${model.source}; ${vsix ? `installed ${vsix}` : 'DEVELOPMENT MODE (working tree, not the .vsix)'}`);
  const dirs = { userData: join(tmp, 'user-data'), extensions: join(tmp, 'extensions') };
  if (vsix) {
    const installed = installVsix(vsix, dirs);
    assert.ok(installed.some((id) => /^rankscope\.rankscope@/.test(id)), `the .vsix did not install: ${installed.join(', ')}`);
  }
  server = await startCodeServer({ tmp, workspace, ...dirs });
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1400, height: 1400 } });
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
  // Closing the client lets the extension host flush its logs before the server is stopped.
  await new Promise((r) => setTimeout(r, 1500));
  server?.stop();
  // What VS Code and the extension logged (the Rankscope output channel included), for a failure's cause.
  if (failedStep && tmp) {
    writeFileSync(join(ARTIFACTS, 'code-server.log'), server?.log.join('') ?? '');
    const logs = join(tmp, 'user-data', 'logs');
    if (existsSync(logs)) cpSync(logs, join(ARTIFACTS, 'logs'), { recursive: true });
  }
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('Rankscope in VS Code (code-server)', () => {
  step('1 opens a workspace with the model', async () => {
    await page.locator('.monaco-workbench').waitFor({ timeout: 90_000 });
    await page.getByRole('treeitem', { name: model.file, exact: true }).waitFor({ timeout: 60_000 });
    await shot('01-workspace.png');
  });

  step('2 opens the Rankscope container and the model', async () => {
    await page.getByRole('tab', { name: /^Rankscope/ }).click();
    await page.getByRole('button', { name: 'Open Model…' }).or(page.getByText('No model is open')).first().waitFor();
    await shot('02-container-welcome.png');
    await openFromExplorer(model.file);
    await layersTree().first().waitFor();
    assert.ok((await treeLabels())[0]!.startsWith(`${model.file} `));
  });

  step('3 shows the layers, their counts and descriptions', async () => {
    // Room for every row (the tree only renders what is visible): collapse the Spectrum pane.
    await page.locator('.pane-header', { hasText: /^\s*Spectrum/i }).first().click();
    await expandAll();
    // Descriptions gain `r95 N` once the spectra are in (worker threads): wait for all of them.
    const expected = model.layers.map((l) => `${leafName(l.name)} ${l.shape[0]}×${l.shape[1]} · ${count(l.params)} · r95 ${l.r95}`);
    await waitUntil('every layer with its r95', async () => (await treeLabels()).filter((l) => / · r95 \d+$/.test(l)).length >= expected.length, 120_000);
    const labels = await treeLabels();
    // Same rows as numpy's list; the tree orders them by module path, so compare sorted.
    assert.deepEqual(labels.filter((l) => /\d+×\d+ · /.test(l)).sort(), [...expected].sort());
    assert.equal(labels[0], `${model.file} ${count(model.totalParams)} params`);
    // Group rows (module containers): `layers.0  2 · 16.4K` = layers inside · their parameters.
    const groups = new Map<string, { n: number; params: number }>();
    for (const l of model.layers) {
      const segs = segments(l.name);
      for (let i = 1; i < segs.length; i++) {
        const g = groups.get(segs.slice(0, i).join('.')) ?? { n: 0, params: 0 };
        groups.set(segs.slice(0, i).join('.'), { n: g.n + 1, params: g.params + l.params });
      }
    }
    for (const [path, g] of groups) {
      const label = segments(path).at(-1)!;
      if ([...groups.keys()].filter((p) => segments(p).at(-1) === label).length > 1) continue; // ambiguous label
      const row = layersTree().filter({ has: page.locator('.label-name', { hasText: new RegExp(`^${label.replace(/\./g, '\\.')}$`) }) }).first();
      assert.equal(await row.locator('.label-description').textContent(), `${g.n} · ${count(g.params)}`, path);
    }
    await shot('03-layers.png');
    await page.locator('.pane-header', { hasText: /^\s*Spectrum/i }).first().click();
  });

  /** The layer that saves the most parameters at 95 % energy (numpy): the one worth compressing. */
  const target = (): ExpectedLayer => [...model.layers]
    .sort((a, b) => (b.params - b.r95 * (b.shape[0] + b.shape[1])) - (a.params - a.r95 * (a.shape[0] + a.shape[1])))[0]!;

  step('4 right-click a layer → Compress Layer… → energy 95 %', async () => {
    const t = target();
    const row = layersTree().and(page.locator(`[aria-label="${leafName(t.name)} ${t.shape[0]}×${t.shape[1]} · ${count(t.params)} · r95 ${t.r95}"]`)).first();
    await row.click({ button: 'right' });
    await chooseMenuItem(/^Compress Layer…/);
    const pick = page.locator('.quick-input-widget').getByRole('option', { name: /energy 95 %/ });
    await pick.waitFor();
    await shot('04-compress-quickpick.png');
    await pick.click();
    // rankscope.json configures evaluation data, so the factorization method is asked next: plain SVD (numpy's ranks below).
    const plain = page.locator('.quick-input-widget').getByRole('option', { name: /Plain SVD/ });
    await plain.waitFor();
    await plain.click();
    // The output name box, pre-filled with model.rankscope.onnx: accept it.
    const input = page.locator('.quick-input-widget input');
    await page.waitForFunction(() => (document.querySelector('.quick-input-widget input') as HTMLInputElement | null)?.value.endsWith('.onnx'));
    assert.ok((await input.inputValue()).endsWith(`/${stem()}.rankscope.onnx`));
    await input.press('Enter');
  });

  step('5 writes the new file; the tree shows the compressed layer with its rank', async () => {
    const out = join(workspace, `${stem()}.rankscope.onnx`);
    const t = target();
    await waitUntil('the compressed model in the tree', async () => (await treeLabels()).some((l) => l.startsWith(`${stem()}.rankscope.onnx `)), 120_000);
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
    // The smallest layer other than the compressed one: min(out, in) singular values.
    const head = [...model.layers].filter((l) => l !== target()).sort((a, b) => a.sv.length - b.sv.length)[0]!;
    await layersTree().filter({ has: page.locator('.label-name', { hasText: new RegExp(`^${leafName(head.name).replace(/\./g, '\\.')}$`) }) })
      .filter({ hasText: `${head.shape[0]}×${head.shape[1]}` }).first().click();
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
    await page.getByRole('tab', { name: /^Explorer/ }).click();
    await page.locator('.explorer-folders-view').getByRole('treeitem', { name: `${stem()}.rankscope.onnx`, exact: true }).waitFor();
    await openFromExplorer(model.file);
    await waitUntil('the original model back in the tree', async () => (await treeLabels()).some((l) => l.startsWith(`${model.file} `)), 120_000);
    await runCommand('Rankscope: Show Accuracy/Size Trade-off');
    const view = await webviewWith('tradeoff-chart');
    const chart = view.getByTestId('tradeoff-chart');
    await waitUntil('the first trade-off point', async () => Number(await chart.getAttribute('data-drawn-points')) > 0, 180_000);
    await shot('07-tradeoff-streaming.png');
    // rankscope.json asks for 2 budgets × 2 allocations + 1 energy threshold = 5 points.
    await waitUntil('5 trade-off points', async () => (await chart.getAttribute('data-drawn-points')) === '5', 240_000);
    const rows = await view.locator('[data-testid="points"] tbody tr').count();
    assert.equal(rows, 5);
    assert.doesNotMatch((await view.locator('.status').textContent()) ?? '', /failed/);
    assert.match((await chart.getAttribute('aria-label')) ?? '', /^Accuracy against parameters: 5 points, \d+ on the Pareto front$/);
    await shot('07-tradeoff.png');
  });
});

/** Fraction of Σσ² in the top k (from numpy's σ). */
function energyAt(sv: number[], k: number): number {
  const total = sv.reduce((a, s) => a + s * s, 0);
  return sv.slice(0, k).reduce((a, s) => a + s * s, 0) / total;
}
