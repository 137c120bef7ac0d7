// End to end, as a person does it: code-server (a real VS Code 1.100) with the packaged Rankscope
// .vsix installed, driven by Playwright in Debian's Chromium. Seven steps, in order, each saving a
// screenshot to test-artifacts/e2e/. Expected layer facts come from numpy run on the model file, never
// from Rankscope's own code.
//
// Env (set by scripts/test-e2e.mjs): RANKSCOPE_E2E_VSIX = the .vsix to install; or
// RANKSCOPE_E2E_DEV=1 to load the working tree as a development extension instead (no package yet).
import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { makeFixture } from '../integration/fixtures';
import { runPython } from '../helpers/python';
import { ROOT } from './codeServer';
import {
  ARTIFACTS, closeSession, count, denseLabel, energyAt, leafName, openSession, referenceLayers, segments, stepRunner, workbench,
  type ExpectedLayer, type Session,
} from './workbench';

let session: Session | undefined;
let workspace: string;
let model: E2EModel;
let page: Page;

interface E2EModel {
  /** File name in the workspace. */
  file: string;
  layers: ExpectedLayer[];
  totalParams: number;
  /** Where it came from, for the log. */
  source: string;
}

/** The workspace's model: the sample (media/samples) when there is one, else a generated fixture. */
function prepareModel(workspace: string): E2EModel {
  const samples = join(ROOT, 'media', 'samples');
  const sample = ['skeleton-transformer.onnx', 'skeleton-catformer.onnx'].find((f) => existsSync(join(samples, f)));
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
  const ref = referenceLayers(join(workspace, file));
  return { file, source, ...ref };
}

const { step, failed } = stepRunner(() => page);

const stem = (): string => model.file.replace(/\.onnx$/, '');
const shot = (file: string): Promise<Buffer> => page.screenshot({ path: join(ARTIFACTS, file) });

const { layersTree, treeRow, treeLabels, topTreeLabel, expandAll, waitForLayerRows, webviewWith, waitUntil, runCommand, chooseMenuItem, openFromExplorer } = workbench(() => page);

before(async () => {
  session = await openSession((workspace) => { model = prepareModel(workspace); });
  ({ page, workspace } = session);
  console.log(`e2e: model ${model.source}; ${session.mode}`);
});

after(() => closeSession(session, failed() !== undefined));

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
    // Same rows as numpy's list (the tree orders them by module path). Descriptions gain `r95 N`
    // once the spectra are in (worker threads), so this waits for all of them.
    const labels = await waitForLayerRows(model.layers.map(denseLabel));
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
  const target = (): ExpectedLayer => model.layers.filter((l) => l.plain)
    .sort((a, b) => (b.params - b.r95 * (b.shape[0] + b.shape[1])) - (a.params - a.r95 * (a.shape[0] + a.shape[1])))[0]!;

  step('4 right-click a layer → Compress Layer… → energy 95 %', async () => {
    const t = target();
    const row = await treeRow(denseLabel(t));
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
    await waitUntil('the compressed model in the tree', async () => (await topTreeLabel())?.startsWith(`${stem()}.rankscope.onnx `) ?? false, 120_000);
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
    // Selected and scrolled into view (Rankscope reveals what it changed); later steps scroll the
    // tree themselves, so this reveal must be over first.
    await page.waitForFunction((w) => [...document.querySelectorAll('[role="treeitem"]')]
      .some((r) => r.getAttribute('aria-label') === w && r.getAttribute('aria-selected') === 'true'), want);
    await shot('05-compressed-tree.png');
  });

  step('6 the spectrum panel draws one point per singular value', async () => {
    // The smallest layer other than the compressed one: min(out, in) singular values. Its row label
    // must name it alone (several blocks have a `residual.0`, several `q 60×3 …` rows look alike).
    const unique = (l: ExpectedLayer): boolean => model.layers.filter((o) => denseLabel(o) === denseLabel(l)).length === 1;
    const head = model.layers.filter((l) => l.plain && l !== target() && unique(l)).sort((a, b) => a.sv.length - b.sv.length)[0]!;
    // The compressed model's tree opens with its big groups folded, scrolled to the compressed layer.
    await expandAll();
    await (await treeRow(denseLabel(head))).click();
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
    await waitUntil('the original model back in the tree', async () => (await topTreeLabel())?.startsWith(`${model.file} `) ?? false, 120_000);
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
