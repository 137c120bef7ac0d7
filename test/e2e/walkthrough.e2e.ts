// Issue 13's closing walkthrough, as a new user takes it in the packaged extension (code-server +
// Chromium): the bundled sample → the Layers tree → a spectrum → Compress Layer… → the trade-off
// view → Fine-tune (1 epoch, CPU) → Restore Original Weights. One screenshot per step under
// test-artifacts/e2e/walkthrough/NN-step.png, and each step asserts what it shows against numpy
// (layer facts, restored weights) or the files written. Short on purpose (CI has 2 cores): the
// sample's task file is pre-seeded with a 3-point sweep on 64 test samples, so the copy that Open
// Sample Model makes keeps it; everything else is the sample as shipped.
//
// Env (set by scripts/test-e2e.mjs): RANKSCOPE_E2E_VSIX, or RANKSCOPE_E2E_DEV=1 (see workbench.ts).
import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FrameLocator, Page } from 'playwright-core';
import { runPython } from '../helpers/python';
import { ROOT } from './codeServer';
import {
  ARTIFACTS, closeSession, count, denseLabel, energyAt, leafName, openSession, referenceLayers, stepRunner, workbench,
  type ExpectedLayer, type Session,
} from './workbench';

const SHOTS = join(ARTIFACTS, 'walkthrough');
const SAMPLE_DIR = 'rankscope-sample';
const bundledTask = JSON.parse(readFileSync(join(ROOT, 'media', 'samples', 'rankscope.json'), 'utf8')) as { model: string; data: string };
const MODEL = bundledTask.model; // the model the sample's task file (and the docs) name: the Transformer
const stem = MODEL.replace(/\.onnx$/, '');

let session: Session | undefined;
let page: Page;
let sampleDir: string;
let original: { layers: ExpectedLayer[]; totalParams: number };

const { step, failed } = stepRunner(() => page, SHOTS);
const { layersTree, treeRow, treeLabels, topTreeLabel, expandAll, waitForLayerRows, webviewWith, waitUntil, runCommand, chooseMenuItem, openFromExplorer } = workbench(() => page);
const shot = (n: number, name: string): Promise<Buffer> => page.screenshot({ path: join(SHOTS, `${String(n).padStart(2, '0')}-${name}.png`) });
const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The tree row label of a dense layer as the tree prints it: `fc1 64×128 · 8.19K · r95 12`. */

/** The layer worth compressing: the one that saves the most parameters at 95 % energy (numpy). */
const target = (): ExpectedLayer => original.layers.filter((l) => l.plain)
  .sort((a, b) => (b.params - b.r95 * (b.shape[0] + b.shape[1])) - (a.params - a.r95 * (a.shape[0] + a.shape[1])))[0]!;

/** Waits for the quick input titled `title` (one prompt replaces the last in the same widget). */
async function prompt(title: string): Promise<void> {
  await page.locator('.quick-input-widget .quick-input-title', { hasText: new RegExp(`^${escape(title)}`) }).waitFor();
}

/** Answers the input box titled `title`: types `value` (or keeps the proposed one) and accepts. */
async function answerInput(title: string, value?: string): Promise<void> {
  await prompt(title);
  const input = page.locator('.quick-input-widget input');
  if (value !== undefined) await input.fill(value);
  await input.press('Enter');
  await page.locator('.quick-input-widget .quick-input-title', { hasText: new RegExp(`^${escape(title)}`) }).waitFor({ state: 'hidden' });
}

async function pickOption(title: string | undefined, name: RegExp): Promise<void> {
  if (title) await prompt(title);
  const option = page.locator('.quick-input-widget').getByRole('option', { name });
  await option.first().waitFor();
  await option.first().click();
}

/** The text of every notification toast now shown. */
async function toasts(): Promise<string[]> {
  return page.locator('.notification-list-item').evaluateAll((items) => items.map((i) => `${i.getAttribute('aria-label') ?? ''} ${i.textContent ?? ''}`));
}

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  session = await openSession((workspace) => {
    // A short sweep for CI; Open Sample Model keeps an existing task file (it never overwrites).
    sampleDir = join(workspace, SAMPLE_DIR);
    mkdirSync(sampleDir);
    const input = JSON.parse(runPython('import onnx,sys,json; print(json.dumps(onnx.load(sys.argv[1]).graph.input[0].name))', [join(ROOT, 'media', 'samples', MODEL)])) as string;
    writeFileSync(join(sampleDir, 'rankscope.json'), JSON.stringify({
      model: MODEL, data: bundledTask.data, preset: 'ntu', inputs: { [input]: 'x_test' }, labels: 'y_test', limit: 64, latency: false,
      sweep: { levels: [0.5], allocations: ['energy', 'uniform'], energies: [0.95] },
    }, null, 2));
  });
  page = session.page;
  original = referenceLayers(join(ROOT, 'media', 'samples', MODEL));
  console.log(`e2e walkthrough: ${MODEL}, ${original.layers.length} layers; ${session.mode}`);
});

after(() => closeSession(session, failed() !== undefined, SHOTS));

describe('walkthrough: sample → tree → spectrum → compress → trade-off → fine-tune → restore', () => {
  step('1 the welcome view\'s Open Sample Model copies the sample into the workspace and opens the Transformer', async () => {
    await page.locator('.monaco-workbench').waitFor({ timeout: 90_000 });
    await page.getByRole('tab', { name: /^Rankscope/ }).click();
    await page.getByRole('button', { name: 'Open Sample Model' }).click();
    await waitUntil('the sample in the tree', async () => (await topTreeLabel())?.startsWith(`${MODEL} `) ?? false, 60_000);
    for (const f of [MODEL, bundledTask.data]) assert.ok(existsSync(join(sampleDir, f)), `${f} was not copied into the workspace`);
    assert.equal((await treeLabels())[0], `${MODEL} ${count(original.totalParams)} params`);
    await shot(1, 'sample');
  });

  step('2 the tree lists every layer with numpy\'s shape, parameters and r95', async () => {
    // Room for every row (the tree only renders what is visible): collapse the Spectrum pane.
    await page.locator('.pane-header', { hasText: /^\s*Spectrum/i }).first().click();
    await expandAll();
    // Descriptions gain `r95 N` once the spectra are in (worker threads): this waits for all of them.
    await waitForLayerRows(original.layers.map(denseLabel));
    await shot(2, 'tree');
    await page.locator('.pane-header', { hasText: /^\s*Spectrum/i }).first().click();
  });

  step('3 the spectrum panel draws one point per singular value and the energy numpy gives', async () => {
    const t = target();
    await (await treeRow(denseLabel(t))).click();
    const view = await webviewWith('spectrum-chart');
    await view.locator(`[data-testid="spectrum-chart"][data-focus-points="${t.sv.length}"]`).waitFor();
    assert.equal(await view.getByTestId('spectrum-chart').getAttribute('data-drawn-points'), String(t.sv.length));
    assert.equal(await view.getByTestId('energy').textContent(), `energy kept ${(100 * energyAt(t.sv, t.r95)).toFixed(2)} %`);
    await shot(3, 'spectrum');
  });

  step('4 Compress Layer… at 95 % energy writes a new model; the tree shows the layer at numpy\'s rank', async () => {
    const t = target();
    await (await treeRow(denseLabel(t))).click({ button: 'right' });
    await chooseMenuItem(/^Compress Layer…/);
    await pickOption(undefined, /energy 95 %/);
    // The sample's rankscope.json configures evaluation data, so the factorization method is asked next: plain SVD (numpy's ranks below).
    await pickOption(undefined, /Plain SVD/);
    await page.waitForFunction(() => (document.querySelector('.quick-input-widget input') as HTMLInputElement | null)?.value.endsWith('.onnx'));
    assert.ok((await page.locator('.quick-input-widget input').inputValue()).endsWith(`/${SAMPLE_DIR}/${stem}.rankscope.onnx`));
    await answerInput('Write the compressed model to');
    const [m, n] = t.shape;
    const want = `${leafName(t.name)} ${m}×${n} · ${count(m * n)} → ${count(t.r95 * (m + n))} · rank ${t.r95}`;
    await waitUntil('the compressed layer in the tree', async () => (await (await treeRow(want)).count()) > 0, 120_000);
    assert.ok(existsSync(join(sampleDir, `${stem}.rankscope.onnx`)));
    await shot(4, 'compress');
  });

  step('5 the trade-off view measures the task file\'s 3 points with ONNX Runtime', async () => {
    await openFromExplorer(`${SAMPLE_DIR}/${MODEL}`);
    await waitUntil('the original model back in the tree', async () => (await topTreeLabel())?.startsWith(`${MODEL} `) ?? false, 120_000);
    await runCommand('Rankscope: Show Accuracy/Size Trade-off');
    const view = await webviewWith('tradeoff-chart');
    const chart = view.getByTestId('tradeoff-chart');
    // 1 budget × 2 allocations + 1 energy threshold.
    await waitUntil('3 trade-off points', async () => (await chart.getAttribute('data-drawn-points')) === '3', 180_000);
    assert.equal(await view.locator('[data-testid="points"] tbody tr').count(), 3);
    assert.doesNotMatch((await view.locator('.status').textContent()) ?? '', /failed/);
    await shot(5, 'tradeoff');
  });

  step('6 Fine-tune (1 epoch, CPU): progress reads epoch 1 / 1 in the view and the notification; splits and test named', async () => {
    await openFromExplorer(`${SAMPLE_DIR}/${stem}.rankscope.onnx`);
    await waitUntil('the compressed model in the tree', async () => (await topTreeLabel())?.startsWith(`${stem}.rankscope.onnx `) ?? false, 120_000);
    await runCommand('Rankscope: Fine-tune Compressed Model…');
    await answerInput('Epochs', '1');
    await answerInput('Learning rate'); // the default
    await pickOption('Device', /^cpu/);
    await pickOption('Distillation', /^Labels only/);
    await prompt('Write the fine-tuned model to');
    assert.match(await page.locator('.quick-input-widget input').inputValue(), new RegExp(`/${escape(`${stem}.rankscope.finetuned.onnx`)}$`));
    await answerInput('Write the fine-tuned model to'); // the proposed output: the next free name
    const view: FrameLocator = await webviewWith('progress', 120_000);
    const progress = view.getByTestId('progress');
    // Watch the view and the notification while it runs: both number the epoch as the worker does.
    const seen = new Set<string>();
    await waitUntil('the fine-tuning run to finish', async () => {
      const text = (await progress.textContent()) ?? '';
      for (const m of [text, ...(await toasts())].join('\n').matchAll(/epoch (\d+) \/ (\d+)/g)) seen.add(m[0]);
      return /^completed/.test(text);
    }, 240_000);
    assert.deepEqual([...seen], ['epoch 1 / 1'], 'no other epoch number than 1 of 1 (the view once said 2 / 1)');
    const splits = await view.getByTestId('splits').locator('li').allTextContents();
    assert.match(splits[0]!, /^validation: \d+ samples held out of x_train by subject \(subjects [\d, ]+ of \d+; 10 % asked, seed 0\)$/);
    assert.match(splits[1]!, /^test: x_test\/y_test of skeleton-actions\.npz \(\d+ samples\), scored once with the best weights$/);
    assert.equal(await view.getByTestId('accuracy-chart').getAttribute('data-epochs'), 'before,1');
    const summary = (await view.getByTestId('summary').textContent()) ?? '';
    assert.match(summary, /best \(validation\)\d+\.\d\d % (at epoch 1|before fine-tuning)/);
    assert.match(summary, /test \(best weights\)\d+\.\d\d %/);
    assert.doesNotMatch(summary, /— \(/, 'a completed run has every figure');
    await waitUntil('the notification of the result', async () => (await toasts()).some((t) => t.includes('fine-tuned')), 30_000);
    const done = (await toasts()).find((t) => t.includes('fine-tuned'));
    assert.match(done!, /validation [\d.]+ % → [\d.]+ % \((epoch 1|before fine-tuning: no epoch beat it)\); test [\d.]+ % with the best weights/);
    assert.ok(existsSync(join(sampleDir, `${stem}.rankscope.finetuned.onnx`)));
    await shot(6, 'finetune');
  });

  step('7 Restore Original Weights brings back the layer exactly as in the original (numpy)', async () => {
    const t = target();
    const [m, n] = t.shape;
    const compressedRow = `${leafName(t.name)} ${m}×${n} · ${count(m * n)} → ${count(t.r95 * (m + n))} · rank ${t.r95}`;
    // The Rankscope container (a click on its tab when it is already shown would hide it).
    if (!(await layersTree().first().isVisible())) await page.getByRole('tab', { name: /^Rankscope/ }).click();
    await (await treeRow(compressedRow)).click({ button: 'right' });
    await chooseMenuItem(/^Restore Original Weights/);
    // Read the proposal only once this prompt shows (the box may still hold the last one's text).
    await prompt('Restore Original Weights: write the model to');
    await page.waitForFunction(() => (document.querySelector('.quick-input-widget input') as HTMLInputElement | null)?.value.endsWith('.restored.onnx'));
    const out = await page.locator('.quick-input-widget input').inputValue();
    assert.match(out, new RegExp(`/${escape(`${stem}.rankscope.restored.onnx`)}$`));
    await answerInput('Restore Original Weights: write the model to');
    await waitUntil('the restored model in the tree', async () => (await topTreeLabel())?.startsWith(`${stem}.rankscope.restored.onnx `) ?? false, 120_000);
    await waitUntil('the restored layer dense again', async () => (await (await treeRow(denseLabel(t))).count()) > 0, 120_000);
    // The restored weight is the original's, bit for bit (numpy on both files).
    const same = runPython(String.raw`
import sys, numpy as np, onnx
from onnx import numpy_helper
a = {i.name: numpy_helper.to_array(i) for i in onnx.load(sys.argv[1]).graph.initializer}
b = {i.name: numpy_helper.to_array(i) for i in onnx.load(sys.argv[2]).graph.initializer}
print(sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a))`, [join(ROOT, 'media', 'samples', MODEL), out]).trim();
    assert.equal(same, 'True', 'the restored model\'s initializers equal the original\'s');
    await shot(7, 'restore');
  });
});
