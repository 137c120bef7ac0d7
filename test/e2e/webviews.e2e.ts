// Component tests of the four views in Debian's Chromium: the built bundles (dist/webview) in the
// CSP shell the extension serves, the test playing the extension host through the real wire
// format. Screenshots per theme go to test-artifacts/e2e/webviews/.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { launchChromium, openView, themeForeground, type Theme, type ViewHarness } from './harness';
import * as S from '../../webview/spectrum/protocol';
import * as T from '../../webview/tradeoff/protocol';
import * as O from '../../webview/overview/protocol';
import * as F from '../../webview/finetune/protocol';
import { spectrumCsv, summarizeCut } from '../../webview/spectrum/rank';
import { formatPercent } from '../../src/core/format';

const ARTIFACTS = join(__dirname, '..', '..', 'test-artifacts', 'e2e', 'webviews');
mkdirSync(ARTIFACTS, { recursive: true });

// An untrusted layer name: if any view put it into HTML, the image's handler would set the flag.
const EVIL = 'encoder.layers.0.<img src=x onerror="window.__pwned=1">';

const decay = (n: number, d: number, top = 10): number[] => Array.from({ length: n }, (_, i) => top * Math.exp(-i / d));
const seriesA: S.SpectrumSeries = {
  layer: EVIL, shape: [96, 384], groups: 1, singularValues: decay(96, 12), params: 96 * 384,
  energyRank: { '0.9': 14, '0.95': 18, '0.99': 28 }, stableRank: 2.1, factorizable: true,
};
const seriesB: S.SpectrumSeries = {
  layer: 'encoder.layers.1.ffn.fc2', shape: [384, 96], groups: 1, singularValues: decay(96, 30, 4), params: 96 * 384,
  energyRank: { '0.9': 34, '0.95': 45, '0.99': 69 }, stableRank: 4.7, factorizable: true,
};

let browser: Browser;
before(async () => { browser = await launchChromium(); });
after(async () => { await browser?.close(); });

async function assertSafe(v: ViewHarness): Promise<void> {
  const pwned = await v.page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned);
  assert.equal(pwned, undefined, 'a layer name was executed as HTML');
  assert.equal(await v.page.locator('img').count(), 0);
  assert.deepEqual(v.problems, [], 'console errors or CSP violations');
}

/** Picks `value` in the <vscode-single-select> with this test id, as a user's choice does (a change event). */
async function choose(v: ViewHarness, testId: string, value: string): Promise<void> {
  await v.page.evaluate(([id, choice]) => {
    const sel = document.querySelector(`[data-testid="${id}"]`) as HTMLElement & { value: string };
    sel.value = choice;
    sel.dispatchEvent(new Event('change'));
  }, [testId, value]);
}

async function spectrum(theme: Theme = 'dark', state?: unknown): Promise<ViewHarness> {
  const v = await openView(browser, 'spectrum', { theme, state });
  await v.waitForPost('webview/ready');
  return v;
}

const drawn = (v: ViewHarness, sel = 'canvas'): Promise<string | null> => v.page.getAttribute(sel, 'data-drawn-points');
const rankValue = (v: ViewHarness): Promise<number> =>
  v.page.locator('vscode-textfield.rank-field').evaluate((el) => Number((el as unknown as { value: string }).value));

describe('spectrum panel', () => {
  test('draws one point per singular value, overlays add their own, names shown as text', async () => {
    const v = await spectrum();
    await v.notify(S.DidSetSeriesNotification, { series: [seriesA], modelName: 'model.onnx' });
    assert.equal(await drawn(v), '96');
    await v.notify(S.DidAddSeriesNotification, { series: [seriesB] });
    assert.equal(await drawn(v), String(96 + 96));
    assert.equal(await v.page.getAttribute('canvas', 'data-focus-points'), '96');
    assert.equal(await v.page.locator('.series-list .name').first().textContent(), EVIL);
    await assertSafe(v);
    // Default cut: the focused layer's 95 % energy rank, with its numbers.
    assert.equal(await rankValue(v), 18);
    const cut = summarizeCut(seriesA, 18);
    assert.equal(await v.page.getByTestId('energy').textContent(), `energy kept ${formatPercent(cut.energyKept, 2)}`);
    await v.close();
  });

  test('dragging the cut line and the keyboard set the rank; numbers follow; the host hears the rank', async () => {
    const v = await spectrum();
    await v.notify(S.DidSetSeriesNotification, { series: [seriesA, seriesB] });
    const box = (await v.page.locator('canvas').boundingBox())!;
    const y = box.y + box.height / 2;
    await v.page.mouse.move(box.x + box.width * 0.3, y);
    await v.page.mouse.down();
    const r1 = await rankValue(v);
    await v.page.mouse.move(box.x + box.width * 0.6, y, { steps: 5 });
    await v.page.mouse.up();
    const r2 = await rankValue(v);
    assert.ok(r2 > r1 + 10, `drag right raises the rank (${r1} → ${r2})`);
    const cut = summarizeCut(seriesA, r2);
    assert.equal(await v.page.getByTestId('energy').textContent(), `energy kept ${formatPercent(cut.energyKept, 2)}`);
    const sent = await v.waitForPost(S.DidChangeRankCommand.method);
    assert.deepEqual(sent.params, { layer: EVIL, rank: r2 });
    await v.page.locator('canvas').focus();
    await v.page.keyboard.press('ArrowRight');
    assert.equal(await rankValue(v), r2 + 1);
    await v.page.keyboard.press('Home');
    assert.equal(await rankValue(v), 1);
    await v.page.getByRole('button', { name: '99 %' }).click();
    assert.equal(await rankValue(v), 28, 'energy buttons cut at the smallest rank keeping that energy');
    await assertSafe(v);
    await v.close();
  });

  test('"Compress at this rank" sends the request and shows the reply; disabled past break-even', async () => {
    const v = await spectrum();
    await v.notify(S.DidSetSeriesNotification, { series: [seriesA], rank: 20 });
    await v.page.getByTestId('compress').click();
    const req = await v.waitForPost(S.CompressAtRankRequest.method);
    assert.deepEqual(req.params, { layer: EVIL, rank: 20 });
    await v.reply(req.id!, { file: '/w/model.rankscope.onnx', paramsBefore: 36864, paramsAfter: 9600, energyKept: 0.96 });
    await v.page.getByText('Wrote /w/model.rankscope.onnx', { exact: false }).waitFor();
    // Past the break-even rank (96·384/480 = 76.8 → 76) factorizing saves nothing: refused.
    await v.page.locator('canvas').focus();
    await v.page.keyboard.press('End');
    assert.equal(await rankValue(v), 96);
    assert.equal(await v.page.getByTestId('compress').evaluate((b) => (b as unknown as { disabled: boolean }).disabled), true);
    await v.page.getByText('saves parameters only up to rank 76').waitFor();
    await v.close();
  });

  test('a factorized layer can be compressed again below its rank (issue 13 item 11)', async () => {
    const v = await spectrum();
    // As the host sends it: the inventory lists a factorized pair as not factorizable, with its rank.
    const compressed: S.SpectrumSeries = { ...seriesB, layer: 'enc.fc', factorizable: false, reason: 'factorized at rank 20; it re-compresses only to a lower rank', compressedRank: 20 };
    await v.notify(S.DidSetSeriesNotification, { series: [compressed], rank: 12 });
    const disabled = () => v.page.getByTestId('compress').evaluate((b) => (b as unknown as { disabled: boolean }).disabled);
    assert.equal(await disabled(), false, 'rank 12 < 20: re-compression is offered');
    assert.doesNotMatch((await v.page.locator('body').textContent()) ?? '', /[Cc]annot (be )?compress/);
    await v.page.getByTestId('compress').click();
    const req = await v.waitForPost(S.CompressAtRankRequest.method);
    assert.deepEqual(req.params, { layer: 'enc.fc', rank: 12 });
    await v.reply(req.id!, { file: '/w/m.rankscope.onnx', paramsBefore: 9600, paramsAfter: 5760, energyKept: 0.9 });
    await v.page.locator('canvas').focus();
    for (let i = 0; i < 8; i++) await v.page.keyboard.press('ArrowRight');
    assert.equal(await rankValue(v), 20);
    assert.equal(await disabled(), true, 'at its own rank there is nothing to re-compress');
    await v.page.getByText('Factorized at rank 20: re-compression needs a lower rank.').waitFor();
    await v.close();
  });

  test('exports: CSV equals the data, PNG is a PNG, SVG has one line per series plus the energy curve', async () => {
    const v = await spectrum('light');
    await v.notify(S.DidSetSeriesNotification, { series: [seriesA, seriesB] });
    const got: Record<string, Buffer> = {};
    for (const format of ['csv', 'png', 'svg'] as const) {
      await v.page.getByTestId(`export-${format}`).click();
      const req = await v.waitForPost(S.ExportRequest.method);
      const p = req.params as { format: string; contents: string; encoding: string; suggestedName: string };
      assert.equal(p.format, format);
      assert.match(p.suggestedName, new RegExp(`^[A-Za-z0-9._-]+-spectrum\\.${format}$`));
      got[format] = Buffer.from(p.contents, p.encoding as BufferEncoding);
      await v.reply(req.id!, { saved: `/tmp/x.${format}` });
      await v.page.getByText(`Saved /tmp/x.${format}`).waitFor();
    }
    assert.equal(got.csv!.toString('utf8'), spectrumCsv([seriesA, seriesB]));
    assert.deepEqual([...got.png!.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const svg = got.svg!.toString('utf8');
    assert.match(svg, /^<\?xml[^]*<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.equal((svg.match(/<polyline /g) ?? []).length, 3);
    assert.ok(!svg.includes('<img'), 'the layer name is escaped in the SVG');
    await v.close();
  });

  test('state is restored from getState after a reload', async () => {
    const v = await spectrum();
    await v.notify(S.DidSetSeriesNotification, { series: [seriesA, seriesB], rank: 33, modelName: 'm.onnx' });
    await v.page.getByTestId('normalize').click();
    await v.page.waitForTimeout(200); // setState is debounced by 100 ms
    const saved = await v.page.evaluate(() => (window as unknown as { __state: () => unknown }).__state());
    await v.close();
    const w = await spectrum('dark', saved);
    assert.equal(await drawn(w), '192');
    assert.equal(await rankValue(w), 33);
    assert.equal(await w.page.getByTestId('normalize').evaluate((b) => (b as unknown as { checked: boolean }).checked), true);
    await assertSafe(w);
    await w.close();
  });

  for (const theme of ['dark', 'light', 'high-contrast'] as const) {
    test(`renders without errors in the ${theme} theme`, async () => {
      const v = await spectrum(theme);
      await v.notify(S.DidSetSeriesNotification, { series: [seriesA, seriesB], modelName: 'skeleton-transformer.onnx' });
      const bg = await v.page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      assert.equal(bg, { dark: 'rgb(24, 24, 24)', light: 'rgb(248, 248, 248)', 'high-contrast': 'rgb(0, 0, 0)' }[theme]);
      await v.page.screenshot({ path: join(ARTIFACTS, `spectrum-${theme}.png`) });
      await assertSafe(v);
      await v.close();
    });
  }
});

describe('trade-off panel', () => {
  const point = (i: number, allocation: T.Allocation): T.TradeoffPoint => ({
    id: `${allocation}-${i}`, allocation, label: `${allocation} <b>${i * 20} %</b>`, params: 24e5 * i / 5, fileSize: 96e5 * i / 5,
    latencyMs: 2 + i, accuracy: 0.5 + i * 0.06 + (allocation === 'sensitivity' ? 0.02 : 0),
  });

  test('points stream in with progress; cancel; the Pareto front and original are drawn', async () => {
    const v = await openView(browser, 'tradeoff', { width: 900, height: 900 });
    await v.waitForPost('webview/ready');
    await v.notify(T.DidSetPointsNotification, { points: [], original: { name: 'm.onnx', params: 24e5, fileSize: 96e5, accuracy: 0.86 }, title: EVIL });
    await v.notify(T.DidChangeProgressNotification, { progress: { done: 0, total: 8, message: 'energy 20 %' } });
    let n = 0;
    for (const allocation of ['energy', 'sensitivity'] as const) {
      for (let i = 1; i <= 4; i++) {
        await v.notify(T.DidAddPointNotification, { point: point(i, allocation) });
        n++;
        assert.equal(await drawn(v), String(n));
      }
    }
    await v.page.getByTestId('cancel-sweep').click();
    await v.waitForPost(T.CancelSweepCommand.method);
    await v.notify(T.DidFinishSweepNotification, { outcome: 'cancelled' });
    await v.page.getByText('Sweep cancelled.').waitFor();
    assert.match((await v.page.getAttribute('canvas', 'aria-label'))!, /8 points, 4 on the Pareto front/);
    await v.page.screenshot({ path: join(ARTIFACTS, 'tradeoff-dark.png') });
    await assertSafe(v);
    await v.close();
  });

  test('clicking a point shows its plan; Apply asks the host to write it', async () => {
    const v = await openView(browser, 'tradeoff', { theme: 'light', width: 900, height: 900 });
    await v.waitForPost('webview/ready');
    await v.notify(T.DidSetPointsNotification, { points: [1, 2, 3].map((i) => point(i, 'uniform')), original: null, title: 'm' });
    await v.page.locator('details summary').click();
    await v.page.locator('tr[data-point="uniform-2"]').click();
    const req = await v.waitForPost(T.GetPlanRequest.method);
    assert.deepEqual(req.params, { pointId: 'uniform-2' });
    await v.reply(req.id!, {
      pointId: 'uniform-2', label: 'uniform 40 %', allocation: 'uniform', paramsBefore: 24e5, paramsAfter: 96e4,
      layers: [{ layer: EVIL, shape: [96, 384], rank: 12, paramsBefore: 36864, paramsAfter: 5760, energyKept: 0.93 }],
    });
    await v.page.getByText(EVIL, { exact: true }).waitFor();
    await v.page.getByTestId('apply').click();
    const apply = await v.waitForPost(T.ApplyPointRequest.method);
    assert.deepEqual(apply.params, { pointId: 'uniform-2' });
    await v.reply(apply.id!, { file: '/w/m.uniform40.onnx' });
    await v.page.getByText('Wrote /w/m.uniform40.onnx').waitFor();
    // Latency axis: every point has one, so the option is offered and the points stay drawn.
    await choose(v, 'x-axis', 'latency');
    assert.equal(await drawn(v), '3');
    assert.equal((await v.page.locator('.chart-box canvas').getAttribute('aria-label'))?.startsWith('Accuracy against latency'), true);
    await assertSafe(v);
    await v.close();
  });

  test('issue 14: MACs is an x-axis choice and a table column when the points carry MACs, and absent when none does', async () => {
    const v = await openView(browser, 'tradeoff', { width: 900, height: 900 });
    await v.waitForPost('webview/ready');
    const options = () => v.page.evaluate(() => [...document.querySelectorAll('[data-testid="x-axis"] vscode-option')].map((o) => o.getAttribute('value')));
    await v.notify(T.DidSetPointsNotification, { points: [1, 2].map((i) => point(i, 'energy')), original: { name: 'm.onnx', params: 24e5, fileSize: 96e5, accuracy: 0.86 }, title: 'm' });
    assert.deepEqual(await options(), ['params', 'fileSize', 'latency']);
    const withMacs = [1, 2, 3].map((i) => ({ ...point(i, 'energy'), macs: 85e6 * i / 4 }));
    await v.notify(T.DidSetPointsNotification, { points: withMacs, original: { name: 'm.onnx', params: 24e5, fileSize: 96e5, accuracy: 0.86, macs: 85e6 }, title: 'm' });
    assert.deepEqual(await options(), ['params', 'fileSize', 'latency', 'macs']);
    await choose(v, 'x-axis', 'macs');
    assert.equal(await drawn(v), '3');
    assert.equal((await v.page.locator('.chart-box canvas').getAttribute('aria-label'))?.startsWith('Accuracy against MACs per sample'), true);
    await v.page.locator('details summary').click();
    await v.page.getByRole('cell', { name: '42.5M', exact: true }).waitFor();
    // A set without MACs falls back to parameters.
    await v.notify(T.DidSetPointsNotification, { points: [point(1, 'energy')], original: null, title: 'm' });
    assert.equal((await v.page.locator('.chart-box canvas').getAttribute('aria-label'))?.startsWith('Accuracy against parameters'), true);
    await assertSafe(v);
    await v.close();
  });

  test('issue 13: a running sweep says so; the probes are a counted stage; kept sweeps are selectable; the axis zooms to the data, log x, the front has no vertical jump', async () => {
    const v = await openView(browser, 'tradeoff', { width: 900, height: 900 });
    await v.waitForPost('webview/ready');
    // Before any point: the note says the sweep runs, not "No points yet. Run a sweep…".
    await v.notify(T.DidChangeProgressNotification, { progress: { done: 0, total: 13, message: 'evaluating the original model' } });
    await v.page.getByText('Sweep running: points appear here as each is measured (the original first).').waitFor();
    assert.equal(await v.page.getByText('No points yet').count(), 0);
    await v.notify(T.DidChangeSweepsNotification, {
      sweeps: [
        { id: 'b', title: 'm.rankscope.onnx on d.npz', spec: '−30/50/70 % × energy, uniform, sensitivity', startedAt: 2e12, status: 'running', points: 0 },
        { id: 'a', title: 'm.onnx on d.npz', spec: '−50 % × energy', startedAt: 1e12, status: 'completed', points: 2 },
      ],
      shown: 'b',
    });
    await v.notify(T.DidSetPointsNotification, { points: [], original: { name: 'm.rankscope.onnx', params: 1e6, fileSize: 4e6, accuracy: 0.928, compressedLayers: 3 }, title: 'm', sweepId: 'b' });
    const pts: T.TradeoffPoint[] = [
      { id: 'energy:0.3', allocation: 'energy', label: 'energy −30 %', params: 7e5, fileSize: 28e5, accuracy: 0.9284 },
      { id: 'uniform:0.7', allocation: 'uniform', label: 'uniform −70 %', params: 3e5, fileSize: 12e5, accuracy: 0.101 },
      { id: 'energy:0.9', allocation: 'energy', kind: 'energy', label: 'energy 90 %', params: 5e5, fileSize: 2e6, accuracy: 0.895 },
      { id: 'energy:0.7', allocation: 'energy', label: 'energy −70 %', params: 3.2e5, fileSize: 13e5, accuracy: 0.9259 },
    ];
    for (const point of pts) await v.notify(T.DidAddPointNotification, { point });
    await v.notify(T.DidChangeProgressNotification, { progress: { done: 5, total: 13, message: 'q_proj at rank 8', stage: { label: 'sensitivity probes on 256 of 405 samples', done: 12, total: 45 } } });
    assert.equal(await v.page.getByTestId('stage').textContent(), 'sensitivity probes on 256 of 405 samples: 12 / 45');
    const canvas = v.page.getByTestId('tradeoff-chart');
    // The zoomed axis holds the 89–93 % band; the 10 % point sits on its floor.
    const [yMin, yMax, below] = await Promise.all(['data-y-min', 'data-y-max', 'data-below'].map((a) => canvas.getAttribute(a)));
    assert.ok(Number(yMin) >= 85 && Number(yMin) <= 89.5 && Number(yMax) <= 94, `y ${yMin}–${yMax}`);
    assert.equal(below, '1');
    assert.equal(await drawn(v), '4');
    assert.equal(await canvas.getAttribute('data-front'), 'uniform:0.7 energy:0.7 energy:0.3');
    assert.equal(await canvas.getAttribute('data-front-line'), 'energy:0.7 energy:0.3', 'the line joins the front points in view, not the one on the floor');
    await v.page.screenshot({ path: join(ARTIFACTS, 'tradeoff-zoomed.png') });
    // The energy threshold is its own series, and the baseline is labelled as already compressed.
    await v.page.locator('details summary').click();
    assert.equal(await v.page.locator('tr[data-point="energy:0.9"] td').nth(1).textContent(), 'energy threshold');
    // Full range and log x on request.
    await v.page.getByTestId('y-full').click();
    assert.deepEqual([await canvas.getAttribute('data-y-min'), await canvas.getAttribute('data-y-max')], ['0', '100']);
    await v.page.getByTestId('x-log').click();
    assert.equal(await canvas.getAttribute('data-x-scale'), 'logarithmic');
    // The kept sweeps: selecting one asks the host for it.
    await choose(v, 'sweeps', 'a');
    const select = await v.waitForPost(T.SelectSweepCommand.method);
    assert.deepEqual(select.params, { id: 'a' });
    await assertSafe(v);
    await v.close();
  });
  test('issue 15: the method axis: whitened points are their own hollow series beside plain SVD, a filter per method takes them out of the chart, the front and the table', async () => {
    const v = await openView(browser, 'tradeoff', { width: 900, height: 900 });
    await v.waitForPost('webview/ready');
    const pts: T.TradeoffPoint[] = [0.3, 0.5, 0.7].flatMap((level, i) => [
      { id: `energy:${level}`, allocation: 'energy', label: `energy −${level * 100} %`, params: 1e6 * (1 - level), fileSize: 4e6 * (1 - level), accuracy: 0.8 - i * 0.2 },
      { id: `whitened:energy:${level}`, allocation: 'energy', method: 'whitened', label: `energy −${level * 100} % (whitened SVD)`, params: 1e6 * (1 - level), fileSize: 4e6 * (1 - level), accuracy: 0.9 - i * 0.05 },
    ]);
    await v.notify(T.DidSetPointsNotification, { points: pts, original: null, title: 'm', sweepId: 's' });
    const canvas = v.page.getByTestId('tradeoff-chart');
    assert.equal(await drawn(v), '6');
    assert.equal(await canvas.getAttribute('data-methods'), 'svd:3 whitened:3');
    assert.equal(await canvas.getAttribute('data-front'), 'whitened:energy:0.7 whitened:energy:0.5 whitened:energy:0.3');
    const methods = v.page.getByTestId('methods');
    assert.equal(await methods.isVisible(), true);
    assert.deepEqual(await methods.locator('vscode-checkbox').evaluateAll((els) => els.map((e) => e.getAttribute('label'))), ['plain SVD (filled, 3)', 'whitened SVD (hollow, 3)']);
    await v.page.locator('details summary').click();
    assert.equal(await v.page.locator('tr[data-point="whitened:energy:0.5"] td').nth(2).textContent(), 'whitened SVD');
    assert.equal(await v.page.locator('tr[data-point="energy:0.5"] td').nth(2).textContent(), 'plain SVD');
    await v.page.screenshot({ path: join(ARTIFACTS, 'tradeoff-methods.png') });
    // Filter the whitened method out: only plain SVD is drawn, the front is over plain SVD, the table hides those rows.
    await methods.locator('vscode-checkbox[data-method="whitened"]').click();
    assert.equal(await drawn(v), '3');
    assert.equal(await canvas.getAttribute('data-methods'), 'svd:3 whitened:0');
    assert.equal(await canvas.getAttribute('data-front'), 'energy:0.7 energy:0.5 energy:0.3');
    assert.equal(await v.page.locator('tr[data-point="whitened:energy:0.5"]').isVisible(), false);
    // Both filtered out: nothing drawn. A sweep of one method then shows no filter, and a filter it cannot show hides nothing.
    await methods.locator('vscode-checkbox[data-method="svd"]').click();
    assert.equal(await drawn(v), '0');
    await v.notify(T.DidSetPointsNotification, { points: pts.filter((p) => !p.method), original: null, title: 'm', sweepId: 't' });
    assert.equal(await methods.isVisible(), false);
    assert.equal(await drawn(v), '3');
    await assertSafe(v);
    await v.close();
  });
});

describe('model overview', () => {
  test('summary, kinds and gains; "Show in Layers" sends the layer', async () => {
    const v = await openView(browser, 'overview', { theme: 'high-contrast', width: 900, height: 1000 });
    await v.waitForPost('webview/ready');
    await v.notify(O.DidLoadNotification, {
      summary: {
        fileName: 'skeleton-transformer.onnx', fileSize: 9.4e6, format: 'onnx', irVersion: 8, opsets: ['ai.onnx 17'], producer: 'pytorch 2.1',
        inputs: [{ name: 'x', dtype: 'float32', shape: 'N×3×64×25×2' }], outputs: [{ name: 'logits', dtype: 'float32', shape: 'N×60' }],
        totalParams: 2.4e6, factorizableParams: 2.2e6, layerCount: 26, compressedCount: 0,
      },
      kinds: [{ kind: 'MatMul', count: 24, params: 2.1e6 }, { kind: 'Conv', count: 1, params: 9.6e4 }],
    });
    await v.notify(O.DidUpdateGainsNotification, { pending: 0, gains: [{ layer: EVIL, shape: [96, 384], params: 36864, rank95: 18, saved95: 36864 - 18 * 480 }] });
    assert.equal(await v.page.locator('[data-testid="gains"] tbody tr').count(), 1);
    assert.equal(await v.page.locator('[data-testid="kinds"] tbody tr').count(), 2);
    await v.page.getByText('Show in Layers').click();
    const cmd = await v.waitForPost(O.ShowInLayersCommand.method);
    assert.deepEqual(cmd.params, { layer: EVIL });
    await v.page.screenshot({ path: join(ARTIFACTS, 'overview-high-contrast.png'), fullPage: true });
    await assertSafe(v);
    await v.close();
  });
});

describe('fine-tune view', () => {
  // What the host sends, in the worker's convention: 1-based epochs, steps done, epoch 0 = before fine-tuning.
  const run = { model: EVIL, output: '/w/out.onnx', epochs: 3 };
  const described = {
    ...run, device: 'cpu', stepsPerEpoch: 10,
    validation: 'validation: 90 samples held out of x_train by subject (subjects 3, 17 of 19; 10 % asked, seed 0)',
    test: 'test: x_test/y_test of data.npz (405 samples), scored once with the best weights',
  };
  const epochSteps = (e: number) => Array.from({ length: 10 }, (_, i) => ({ epoch: e, step: (e - 1) * 10 + i + 1, loss: 2 / (e * 10 + i) }));

  test('epochs as the worker numbers them, the before point on the chart, splits named, cancel, summary', async () => {
    const v = await openView(browser, 'finetune', { width: 900, height: 1000 });
    await v.waitForPost('webview/ready');
    await v.notify(F.DidStartNotification, { run });
    assert.match((await v.page.getByTestId('progress').textContent())!, /^starting/);
    await v.notify(F.DidDescribeRunNotification, { run: described });
    await v.notify(F.DidEpochNotification, { epoch: { epoch: 0, valAccuracy: 0.5 } });
    assert.match((await v.page.getByTestId('progress').textContent())!, /^epoch 1 \/ 3 · step 0 \/ 30/);
    await v.notify(F.DidStepNotification, { steps: epochSteps(1).slice(0, 4) });
    // Before the fix the view added one to the epoch the worker sent: "epoch 2 / 3" in the first epoch.
    assert.match((await v.page.getByTestId('progress').textContent())!, /^epoch 1 \/ 3 · step 4 \/ 30/);
    await v.notify(F.DidStepNotification, { steps: epochSteps(1).slice(4) });
    await v.notify(F.DidEpochNotification, { epoch: { epoch: 1, valAccuracy: 0.72, trainAccuracy: 0.7 } });
    await v.notify(F.DidStepNotification, { steps: epochSteps(2) });
    await v.notify(F.DidEpochNotification, { epoch: { epoch: 2, valAccuracy: 0.75, trainAccuracy: 0.8 } });
    assert.equal(await drawn(v, '[data-testid="loss-chart"]'), '20');
    // Validation has the before point (epoch 0, labelled "before") and epochs 1, 2.
    assert.equal(await drawn(v, '[data-testid="accuracy-chart"]'), '3');
    assert.equal(await v.page.getAttribute('[data-testid="accuracy-chart"]', 'data-epochs'), 'before,1,2');
    assert.match((await v.page.getByTestId('progress').textContent())!, /^epoch 2 \/ 3 · step 20 \/ 30 · .* · validation 75\.00 %/);
    assert.deepEqual(await v.page.getByTestId('splits').locator('li').allTextContents(), [described.validation, described.test]);
    await v.page.getByTestId('cancel').click();
    await v.waitForPost(F.CancelCommand.method);
    await v.notify(F.DidFinishNotification, {
      status: 'cancelled',
      summary: { bestEpoch: 2, bestAccuracy: 0.75, finalAccuracy: 0.75, testAccuracy: null, testNote: 'the run was cancelled; test is scored once, when it completes', seconds: 3.2, checkpoint: '/s/checkpoint.pt' },
    });
    await v.page.getByText('Cancelled', { exact: true }).waitFor();
    const summary = (await v.page.getByTestId('summary').textContent())!;
    assert.match(summary, /best \(validation\)75\.00 % at epoch 2 \(so far\)/);
    assert.match(summary, /before fine-tuning \(validation\)50\.00 %/);
    assert.match(summary, /test \(best weights\)— \(the run was cancelled; test is scored once, when it completes\)/);
    await v.page.getByTestId('resume').click();
    await v.waitForPost(F.ResumeCommand.method);
    await v.page.screenshot({ path: join(ARTIFACTS, 'finetune-dark.png'), fullPage: true });
    await assertSafe(v);
    await v.close();
  });

  test('a run cancelled before anything was measured shows dashes with the reason, never 0.00 %', async () => {
    const v = await openView(browser, 'finetune', { width: 900, height: 800 });
    await v.waitForPost('webview/ready');
    await v.notify(F.DidStartNotification, { run });
    await v.notify(F.DidDescribeRunNotification, { run: described });
    await v.notify(F.DidFinishNotification, {
      status: 'cancelled', summary: { bestEpoch: null, bestAccuracy: null, finalAccuracy: null, testAccuracy: null, testNote: 'the run was cancelled', seconds: 0.4 },
    });
    const summary = (await v.page.getByTestId('summary').textContent())!;
    assert.doesNotMatch(summary, /0\.00 %/);
    assert.match(summary, /best \(validation\)— \(cancelled before the first validation\)/);
    assert.match(summary, /last epoch \(validation\)— \(no epoch finished\)/);
    await assertSafe(v);
    await v.close();
  });

  test('a completed run: the best epoch 0 reads "before fine-tuning", test drawn once at it', async () => {
    const v = await openView(browser, 'finetune', { width: 900, height: 1000 });
    await v.waitForPost('webview/ready');
    await v.notify(F.DidStartNotification, { run: { ...run, epochs: 1 } });
    await v.notify(F.DidDescribeRunNotification, { run: { ...described, epochs: 1 } });
    await v.notify(F.DidEpochNotification, { epoch: { epoch: 0, valAccuracy: 0.9 } });
    await v.notify(F.DidStepNotification, { steps: epochSteps(1) });
    await v.notify(F.DidEpochNotification, { epoch: { epoch: 1, valAccuracy: 0.85, trainAccuracy: 0.95 } });
    await v.notify(F.DidFinishNotification, {
      status: 'completed', summary: { bestEpoch: 0, bestAccuracy: 0.9, finalAccuracy: 0.85, testAccuracy: 0.88, seconds: 2, output: '/w/out.onnx' },
    });
    const summary = (await v.page.getByTestId('summary').textContent())!;
    assert.match(summary, /best \(validation\)90\.00 % before fine-tuning \(no epoch beat the model as given/);
    assert.match(summary, /test \(best weights\)88\.00 %/);
    assert.match((await v.page.getByTestId('progress').textContent())!, /^completed · step 10 \/ 10/);
    assert.equal(await v.page.getAttribute('[data-testid="accuracy-chart"]', 'data-epochs'), 'before,1');
    assert.equal(await v.page.getAttribute('[data-testid="accuracy-chart"]', 'data-series'), 'validation,training,test (best weights, once)@before');
    await v.page.screenshot({ path: join(ARTIFACTS, 'finetune-completed-dark.png'), fullPage: true });
    await assertSafe(v);
    await v.close();
  });

  test('a new run clears the previous curves; its failure shows in the view', async () => {
    const v = await openView(browser, 'finetune', { width: 900, height: 800 });
    await v.waitForPost('webview/ready');
    await v.notify(F.DidStartNotification, { run });
    await v.notify(F.DidDescribeRunNotification, { run: described });
    await v.notify(F.DidStepNotification, { steps: epochSteps(1) });
    await v.notify(F.DidEpochNotification, { epoch: { epoch: 1, valAccuracy: 0.7 } });
    await v.notify(F.DidFinishNotification, { status: 'completed', summary: { bestEpoch: 1, bestAccuracy: 0.7, finalAccuracy: 0.7, testAccuracy: 0.69, seconds: 1, output: '/w/out.onnx' } });
    // The next run fails before its worker says `started`.
    await v.notify(F.DidStartNotification, { run: { ...run, output: '/w/out-2.onnx' } });
    assert.equal(await drawn(v, '[data-testid="loss-chart"]'), '0');
    assert.equal(await drawn(v, '[data-testid="accuracy-chart"]'), '0');
    await v.notify(F.DidFinishNotification, {
      status: 'failed', error: 'x_train in d.npz has shape (8, 23), but the model input expects (batch, 24)',
      summary: { bestEpoch: null, bestAccuracy: null, finalAccuracy: null, testAccuracy: null, testNote: 'the run failed', seconds: 0.2 },
    });
    await v.page.getByText('Failed', { exact: true }).waitFor();
    assert.match((await v.page.getByRole('alert').textContent())!, /shape \(8, 23\)/);
    assert.equal(await drawn(v, '[data-testid="loss-chart"]'), '0');
    assert.doesNotMatch((await v.page.getByTestId('summary').textContent())!, /70\.00 %|69\.00 %/);
    await assertSafe(v);
    await v.close();
  });
});

/**
 * The colour of the axis text a chart drew: the most frequent fully opaque grey in a strip at the left edge
 * (the y-axis title and tick labels; a canvas is transparent where nothing is drawn). The three
 * themes' text colours are greys; series colours and the high-contrast border are not.
 */
function axisInk(v: ViewHarness, selector: string): Promise<string> {
  return v.page.locator(selector).evaluate((el) => {
    const c = el as HTMLCanvasElement;
    const img = c.getContext('2d')!.getImageData(0, Math.floor(c.height * 0.05), Math.floor(c.width * 0.035), Math.floor(c.height * 0.8)).data;
    const counts = new Map<string, number>();
    for (let i = 0; i < img.length; i += 4) {
      if (img[i + 3]! < 250 || img[i] !== img[i + 1] || img[i] !== img[i + 2]) continue;
      const hex = `#${[img[i]!, img[i + 1]!, img[i + 2]!].map((x) => x.toString(16).padStart(2, '0')).join('')}`;
      counts.set(hex, (counts.get(hex) ?? 0) + 1);
    }
    return [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'nothing drawn';
  });
}

/** Distance of two greys `#xxxxxx` (any channel); Infinity when nothing was drawn. */
const greyDistance = (a: string, b: string): number => (a.startsWith('#') ? Math.abs(parseInt(a.slice(1, 3), 16) - parseInt(b.slice(1, 3), 16)) : Infinity);

describe('charts follow a theme switch (issue 13 item 10)', () => {
  // Each view with data enough to draw its axes; the theme is switched while the view stays open.
  const views: { view: 'spectrum' | 'tradeoff' | 'finetune' | 'overview'; charts: string[]; load: (v: ViewHarness) => Promise<void> }[] = [
    { view: 'spectrum', charts: ['canvas'], load: (v) => v.notify(S.DidSetSeriesNotification, { series: [seriesA, seriesB], modelName: 'm.onnx' }) },
    {
      view: 'tradeoff', charts: ['canvas'], load: (v) => v.notify(T.DidSetPointsNotification, {
        points: [1, 2, 3].map((i) => ({ id: `e${i}`, allocation: 'energy' as const, label: `${i}`, params: 1e5 * i, fileSize: 4e5 * i, latencyMs: 1, accuracy: 0.6 + 0.1 * i })),
        original: { name: 'm.onnx', params: 4e5, fileSize: 16e5, accuracy: 0.95 }, title: 'm',
      }),
    },
    {
      view: 'finetune', charts: ['[data-testid="loss-chart"]', '[data-testid="accuracy-chart"]'], load: async (v) => {
        await v.notify(F.DidStartNotification, { run: { model: 'm', output: '/w/o.onnx', device: 'cpu', epochs: 2, stepsPerEpoch: 5 } });
        await v.notify(F.DidEpochNotification, { epoch: { epoch: 0, valAccuracy: 0.7 } });
        await v.notify(F.DidStepNotification, { steps: Array.from({ length: 5 }, (_, i) => ({ epoch: 1, step: i + 1, loss: 2 / (1 + i) })) });
        await v.notify(F.DidEpochNotification, { epoch: { epoch: 1, valAccuracy: 0.8 } });
      },
    },
    {
      view: 'overview', charts: ['canvas'], load: (v) => v.notify(O.DidLoadNotification, {
        summary: {
          fileName: 'm.onnx', fileSize: 1e6, format: 'onnx', irVersion: 8, opsets: ['ai.onnx 17'], producer: 'pytorch',
          inputs: [], outputs: [], totalParams: 2e5, factorizableParams: 1e5, layerCount: 3, compressedCount: 0,
        },
        kinds: [{ kind: 'MatMul', count: 2, params: 1.5e5 }, { kind: 'Conv', count: 1, params: 5e4 }],
      }),
    },
  ];
  for (const { view, charts, load } of views) {
    test(`${view}: axis text takes each theme's colour (dark → light → high contrast → dark)`, async () => {
      const v = await openView(browser, view, { theme: 'dark', width: 900, height: 900 });
      await v.waitForPost('webview/ready');
      await load(v);
      for (const theme of ['dark', 'light', 'high-contrast', 'dark'] as const) {
        await v.switchTheme(theme);
        for (const chart of charts) {
          const ink = await axisInk(v, chart);
          // Anti-aliased glyphs: the most frequent grey can be one step off the exact colour.
          assert.ok(greyDistance(ink, themeForeground(theme)) <= 4, `${view} ${chart} in ${theme}: axis text ${ink}, theme foreground ${themeForeground(theme)}`);
        }
        await v.page.screenshot({ path: join(ARTIFACTS, `theme-switch-${view}-${theme}.png`), fullPage: true });
      }
      await assertSafe(v);
      await v.close();
    });
  }
});
