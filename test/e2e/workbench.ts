// What the e2e suites share: a session (a fresh code-server with the packaged .vsix, or the working
// tree with RANKSCOPE_E2E_DEV=1, on a new workspace, in Chromium), ordered steps that stop at the
// first failure, what a person does in the workbench (the Layers tree's rows, webviews found by a
// test id, the command palette, context menus, the Explorer), and the layer facts a person expects,
// computed by numpy from the model file (never by Rankscope).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, FrameLocator, Locator, Page } from 'playwright-core';
import { runPython } from '../helpers/python';
import { codeServerInstalled, installVsix, ROOT, startCodeServer, type CodeServer } from './codeServer';
import { launchChromium } from './harness';

export const ARTIFACTS = join(ROOT, 'test-artifacts', 'e2e');

export interface Session {
  tmp: string;
  workspace: string;
  page: Page;
  server: CodeServer;
  browser: Browser;
  /** What was installed, for the log line. */
  mode: string;
}

/** Starts a session on a new workspace that `prepare` fills first (env: RANKSCOPE_E2E_VSIX or RANKSCOPE_E2E_DEV=1). */
export async function openSession(prepare: (workspace: string) => void | Promise<void>): Promise<Session> {
  const vsix = process.env.RANKSCOPE_E2E_VSIX;
  mkdirSync(ARTIFACTS, { recursive: true });
  if (!codeServerInstalled()) throw new Error('code-server is not installed: run scripts/install-code-server.sh');
  if (!vsix && process.env.RANKSCOPE_E2E_DEV !== '1') throw new Error('set RANKSCOPE_E2E_VSIX (scripts/test-e2e.mjs does) or RANKSCOPE_E2E_DEV=1');
  const tmp = mkdtempSync(join(tmpdir(), 'rankscope-e2e-'));
  const workspace = join(tmp, 'workspace');
  mkdirSync(workspace);
  await prepare(workspace);
  const dirs = { userData: join(tmp, 'user-data'), extensions: join(tmp, 'extensions') };
  if (vsix) {
    const installed = installVsix(vsix, dirs);
    assert.ok(installed.some((id) => /^rankscope\.rankscope@/.test(id)), `the .vsix did not install: ${installed.join(', ')}`);
  }
  const server = await startCodeServer({ tmp, workspace, ...dirs });
  const browser = await launchChromium();
  // Tall enough for every row of the sample's tree (~100 rows: the tree renders only what is visible).
  const page = await browser.newPage({ viewport: { width: 1400, height: 2600 } });
  page.setDefaultTimeout(30_000);
  let url = server.url;
  if (!vsix) {
    const remote = (p: string): string => `vscode-remote://${new URL(server.url).host}${p}`;
    url += `&payload=${encodeURIComponent(JSON.stringify([['extensionDevelopmentPath', remote(ROOT)], ['skipWelcome', 'true']]))}`;
  }
  await page.goto(url);
  return { tmp, workspace, page, server, browser, mode: vsix ? `installed ${vsix}` : 'DEVELOPMENT MODE (working tree, not the .vsix)' };
}

/** Stops the session; after a failure keeps code-server's and the extension's logs in `artifacts`. */
export async function closeSession(s: Session | undefined, failed: boolean, artifacts = ARTIFACTS): Promise<void> {
  if (!s) return;
  await s.browser.close().catch(() => {});
  // Closing the client lets the extension host flush its logs before the server is stopped.
  await new Promise((r) => setTimeout(r, 1500));
  s.server.stop();
  // What VS Code and the extension logged (the Rankscope output channel included), for a failure's cause.
  if (failed) {
    writeFileSync(join(artifacts, 'code-server.log'), s.server.log.join(''));
    const logs = join(s.tmp, 'user-data', 'logs');
    if (existsSync(logs)) cpSync(logs, join(artifacts, 'logs'), { recursive: true });
  }
  rmSync(s.tmp, { recursive: true, force: true });
}

/** Steps run in order; once one fails the later ones are skipped (they depend on it), with a screenshot of the failure. */
export function stepRunner(page: () => Page | undefined, artifacts = ARTIFACTS): { step: (name: string, fn: () => Promise<void>) => void; failed: () => string | undefined } {
  let failedStep: string | undefined;
  const step = (name: string, fn: () => Promise<void>): void => {
    test(name, async (t: TestContext) => {
      if (failedStep) { t.skip(`after failed step: ${failedStep}`); return; }
      try {
        await fn();
      } catch (e) {
        failedStep = name;
        await page()?.screenshot({ path: join(artifacts, `failed-step-${name.split(' ')[0]}.png`) }).catch(() => {});
        throw e;
      }
    });
  };
  return { step, failed: () => failedStep };
}

export interface ExpectedLayer {
  name: string; shape: [number, number]; params: number; sv: number[]; r95: number;
  /** One plain matrix (MatMul, Gemm, ungrouped Conv); false for grouped convs and Gather tables. */
  plain: boolean;
}

// The layers a person expects to see, computed by numpy straight from the ONNX file: every
// MatMul/Gemm/Conv whose weight is an initializer, as its [out, in] matrix (a grouped conv's
// [out, in/groups·k], its spectrum that of all groups' blocks together), and every Gather
// from an initializer table ([rows, dim]); named by the
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
    wi = 0 if n.op_type == "Gather" else 1
    if n.op_type not in ("MatMul", "Gemm", "Conv", "Gather") or len(n.input) < 2 or n.input[wi] not in inits:
        continue
    w = numpy_helper.to_array(inits[n.input[wi]]).astype(np.float64)
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
    groups = 1
    if n.op_type == "MatMul":
        if w.ndim != 2: continue
        mat = w.T
    elif n.op_type == "Gemm":
        mat = w if attrs.get("transB", 0) else w.T
    elif n.op_type == "Gather":
        if w.ndim != 2 or attrs.get("axis", 0) != 0: continue
        mat = w
    else:
        groups = attrs.get("group", 1)
        mat = w.reshape(w.shape[0], -1)
    wname = n.input[wi]
    if not wname.startswith("onnx::") and wname.endswith(".weight"):
        name = wname[: -len(".weight")]
    else:
        # PyTorch scopes: a called Sequential repeats its name (/blocks/blocks.0/tconv -> blocks.0.tconv)
        parts = n.name.strip("/").split("/")[:-1]
        name = ".".join(p for i, p in enumerate(parts) if not (i + 1 < len(parts) and parts[i + 1].startswith(p + ".")))
    rows = mat.shape[0] // groups
    s = np.sort(np.concatenate([np.linalg.svd(mat[g * rows:(g + 1) * rows], compute_uv=False) for g in range(groups)]))[::-1]
    e = np.cumsum(s ** 2) / np.sum(s ** 2)
    layers.append(dict(name=name, shape=list(mat.shape), params=int(mat.size), sv=s.tolist(), r95=int(np.argmax(e >= 0.95 - 1e-12) + 1),
                       plain=bool(groups == 1 and n.op_type != "Gather")))
print(json.dumps(dict(layers=layers, totalParams=total)))
`;

/** The layers (and the total parameter count) of the ONNX file at `path`, by numpy. */
export function referenceLayers(path: string): { layers: ExpectedLayer[]; totalParams: number } {
  return JSON.parse(runPython(REFERENCE, [path])) as { layers: ExpectedLayer[]; totalParams: number };
}

/** Module path → tree segments; a numeric part stays with its container (`layers.0`). */
export function segments(name: string): string[] {
  const out: string[] = [];
  for (const p of name.split('.')) {
    if (/^\d+$/.test(p) && out.length) out[out.length - 1] += `.${p}`;
    else out.push(p);
  }
  return out;
}

/** Numbers as the tree prints them, written out independently: 8192 → 8.19K, 640 → 640. */
export function count(n: number): string {
  if (n < 1000) return String(n);
  const [v, unit] = n >= 1e6 ? [n / 1e6, 'M'] : [n / 1e3, 'K'];
  return `${Number(v.toPrecision(3))}${unit}`;
}

export const leafName = (layer: string): string => segments(layer).at(-1)!;

/** A dense layer's row in the Layers tree, as its accessible name: `fc1 768×3072 · 2.36M · r95 412`. */
export const denseLabel = (l: ExpectedLayer): string => `${leafName(l.name)} ${l.shape[0]}×${l.shape[1]} · ${count(l.params)} · r95 ${l.r95}`;

/** Fraction of Σσ² in the top k (from numpy's σ). */
export function energyAt(sv: number[], k: number): number {
  const total = sv.reduce((a, s) => a + s * s, 0);
  return sv.slice(0, k).reduce((a, s) => a + s * s, 0) / total;
}

/** The workbench helpers, bound to the suite's page (read when called: the page is made in `before`). */
export function workbench(page: () => Page) {
  /** Tree rows of the Layers view with their accessible names (`label description`). Not the
   *  sticky-scroll copies of the groups scrolled past (same label and row index, pinned on top). */
  function layersTree(): Locator {
    return page().locator('.pane').filter({ has: page().locator('.pane-header', { hasText: /^\s*Layers/i }) })
      .locator('[role="treeitem"]:not(.monaco-tree-sticky-row)');
  }

  function layersList(): Locator {
    return page().locator('.pane').filter({ has: page().locator('.pane-header', { hasText: /^\s*Layers/i }) }).locator('.monaco-list').first();
  }

  async function treeLabels(): Promise<string[]> {
    return layersTree().evaluateAll((rows) => rows.map((r) => r.getAttribute('aria-label') ?? ''));
  }

  /** The label of the tree's first row (the model), scrolled back to the top after `treeRow`. */
  async function topTreeLabel(): Promise<string | undefined> {
    if (await layersList().isVisible()) {
      await layersList().hover();
      await page().mouse.wheel(0, -100_000);
    }
    // Rows are reused as the list scrolls, so DOM order is not row order: ask for row 0.
    const first = layersTree().and(page().locator('[data-index="0"]')).first();
    return (await first.count()) ? (await first.getAttribute('aria-label')) ?? undefined : undefined;
  }

  /** The row indices of `rows` a click would reach now: on screen and not under the tree's
   *  sticky-scroll header (the groups scrolled past, pinned over the top rows) or another pane. */
  async function reachable(rows: Locator): Promise<string[]> {
    return rows.evaluateAll((els) => els.filter((r) => {
      const b = r.getBoundingClientRect();
      return r.contains(document.elementFromPoint(b.left + b.width / 2, b.top + b.height / 2));
    }).map((r) => r.getAttribute('data-index') ?? ''));
  }

  /** Scrolls the Layers tree from its top down, part of a view at a time, calling `visit` on each
   *  view until it returns true (then true) or the tree's last row is in view (then false). The tree
   *  renders only the rows in view, so a row (or a folded group) out of view is not in the page. */
  async function scanTree(visit: () => Promise<boolean>): Promise<boolean> {
    const list = layersList();
    const firstRow = layersTree().and(page().locator('[data-index="0"]'));
    const lastRow = layersTree().and(page().locator('[data-last-element="true"]'));
    const sticky = list.locator('.monaco-tree-sticky-row');
    if (!(await layersTree().count())) return false; // no model (yet)
    // At the very top no group is pinned: row 0 is there and the sticky header is empty.
    for (let i = 0; !(await firstRow.count()) || (await sticky.count()); i++) {
      if (i === 20) throw new Error('the Layers tree did not scroll back to its first row');
      await list.hover();
      await page().mouse.wheel(0, -100_000);
      await page().waitForTimeout(100);
    }
    for (let i = 0; i < 1000; i++) {
      if (await visit()) return true;
      if ((await reachable(lastRow)).length) return false;
      // Less than a view at a time (VS Code scrolls less than the wheel's delta): no row is skipped.
      const height = (await list.boundingBox())?.height ?? 300;
      await list.hover();
      await page().mouse.wheel(0, Math.max(100, Math.floor(height * 0.6)));
      await page().waitForTimeout(100);
    }
    return false;
  }

  /** Every row's label in row order, read top to bottom: the tree renders only the rows in view. */
  async function allTreeLabels(): Promise<string[]> {
    const byIndex = new Map<number, string>();
    await scanTree(async () => {
      const rows = await layersTree().evaluateAll((els) => els.map((r) => [Number(r.getAttribute('data-index')), r.getAttribute('aria-label') ?? ''] as const));
      for (const [index, label] of rows) byIndex.set(index, label);
      return false;
    });
    return [...byIndex.keys()].sort((a, b) => a - b).map((i) => byIndex.get(i)!);
  }

  /** Waits until the tree's layer rows (`name shape · params …`) are `expected`, in any order, and
   *  returns every row's label. The rows change as the spectra come in (and as refreshes re-render
   *  them), so this polls; on timeout the last read is compared, to show the diff. */
  async function waitForLayerRows(expected: string[], timeoutMs = 120_000): Promise<string[]> {
    const want = [...expected].sort();
    let labels: string[] = [], rows: string[] = [];
    const settled = async () => {
      labels = await allTreeLabels();
      rows = labels.filter((l) => /\d+×\d+ · /.test(l)).sort();
      return rows.length === want.length && rows.every((r, i) => r === want[i]);
    };
    await waitUntil('the Layers tree\'s rows', settled, timeoutMs).catch((e: unknown) => {
      assert.deepEqual(rows, want, `the Layers tree's rows after ${timeoutMs / 1000} s`);
      throw e; // the rows were right: an error notification ended the wait
    });
    return labels;
  }

  /** The Layers tree's row labelled `label`, scrolled into view (as a person scrolls to it). */
  async function treeRow(label: string): Promise<Locator> {
    const row = layersTree().and(page().locator(`[aria-label="${label}"]`)).first();
    if (!(await reachable(row)).length) await scanTree(async () => (await reachable(row)).length > 0);
    return row;
  }

  /** Expands every folded group of the Layers tree, top to bottom (a click toggles a group, as a
   *  person does); groups out of view are reached by scrolling, so no fold is missed. */
  async function expandAll(): Promise<void> {
    const folded = layersTree().and(page().locator('[aria-expanded="false"]'));
    const row = (index: string): Locator => layersTree().and(page().locator(`[data-index="${index}"]`));
    await scanTree(async () => {
      // A group's rows open below it, so what is left to expand is in view or further down.
      const clicks = new Map<string, number>();
      for (let next: string | undefined; (next = (await reachable(folded))[0]) !== undefined;) {
        clicks.set(next, (clicks.get(next) ?? 0) + 1);
        if (clicks.get(next)! > 3) throw new Error(`the Layers tree's row ${next} did not open after 3 clicks`);
        await row(next).click();
        // Clicking again before it shows as open would fold it back; a click the tree swallowed (a
        // refresh re-rendering the row as it landed) leaves it folded, and the next round clicks again.
        await row(next).and(page().locator('[aria-expanded="true"]')).waitFor({ timeout: 5_000 }).catch(() => {});
      }
      return false;
    });
  }

  /** The inner frame of the webview that contains `testId` (webviews live in nested iframes). */
  async function webviewWith(testId: string, timeoutMs = 60_000): Promise<FrameLocator> {
    const t0 = Date.now();
    for (;;) {
      const n = await page().locator('iframe.webview.ready').count();
      for (let i = 0; i < n; i++) {
        const inner = page().frameLocator(`iframe.webview.ready >> nth=${i}`).frameLocator('#active-frame');
        if (await inner.getByTestId(testId).count().catch(() => 0)) return inner;
      }
      if (Date.now() - t0 > timeoutMs) throw new Error(`no webview shows [data-testid=${testId}] after ${timeoutMs / 1000} s`);
      await page().waitForTimeout(250);
    }
  }

  /** Fails at once with the message when VS Code shows an error notification (instead of a timeout). */
  async function noErrorNotification(): Promise<void> {
    const toast = page().locator('.notification-list-item').filter({ has: page().locator('.codicon-error') }).first();
    if (await toast.count()) throw new Error(`VS Code showed an error: ${await toast.getAttribute('aria-label')}`);
  }

  /** Polls `ready` (in the page) until true, failing early on an error notification. */
  async function waitUntil(what: string, ready: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    const t0 = Date.now();
    while (!(await ready())) {
      await noErrorNotification();
      if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
      await page().waitForTimeout(500);
    }
  }

  async function runCommand(title: string): Promise<void> {
    await page().keyboard.press('F1');
    const input = page().locator('.quick-input-widget input');
    await input.waitFor();
    await input.fill(`>${title}`);
    await page().locator('.quick-input-widget').getByRole('option', { name: new RegExp(title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) }).first().click();
  }

  /** Picks a context-menu entry. Under load the menu can miss a click while it still lays out, so
   *  if it stays open the (now highlighted) entry is taken with Enter, as a keyboard user would. */
  async function chooseMenuItem(name: RegExp): Promise<void> {
    const item = page().getByRole('menuitem', { name });
    await item.waitFor();
    await item.click();
    if (await item.isVisible().catch(() => false)) {
      await page().waitForTimeout(500);
      if (await item.isVisible().catch(() => false)) {
        await item.hover();
        await page().keyboard.press('Enter');
      }
    }
    await item.waitFor({ state: 'hidden' });
  }

  /** The Explorer's row of `file` (a path relative to the workspace: its folders are expanded first). */
  async function explorerRow(file: string): Promise<Locator> {
    await page().getByRole('tab', { name: /^Explorer/ }).click();
    // Away from the tab, whose hover card would catch the next click.
    await page().mouse.move(700, 700);
    // The Explorer re-renders as files appear (the compressed model): let it settle, then aim exactly.
    await page().waitForTimeout(1000);
    const tree = page().locator('.explorer-folders-view');
    const parts = file.split('/');
    for (const folder of parts.slice(0, -1)) {
      const row = tree.getByRole('treeitem', { name: folder, exact: true });
      if ((await row.getAttribute('aria-expanded')) === 'false') await row.click();
    }
    const row = tree.getByRole('treeitem', { name: parts.at(-1)!, exact: true });
    await row.waitFor();
    return row;
  }

  /** Explorer → right-click the file → Open Model… (opens it in the Layers tree). */
  async function openFromExplorer(file: string): Promise<void> {
    await (await explorerRow(file)).click({ button: 'right' });
    await chooseMenuItem(/^Open Model…/);
  }

  return { layersTree, treeRow, treeLabels, topTreeLabel, expandAll, waitForLayerRows, webviewWith, noErrorNotification, waitUntil, runCommand, chooseMenuItem, explorerRow, openFromExplorer };
}
