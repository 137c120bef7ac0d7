// The extension's vscode-free helpers: number formats the tree and status bar show, module-path
// nesting, sparkline SVGs, and the Markdown report's escaping of untrusted names.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { formatBytes, formatCount, formatInteger, formatSaved, formatShape } from '../../../src/core/format';
import { quickPickText } from '../../../src/extension/format';
import { markdownReport } from '../../../src/extension/report';
import { moduleSegments } from '../../../src/extension/tree/modulePath';
import { sparklineSvg, spectrumChartSvg, spectrumImages } from '../../../src/extension/tree/sparkline';
import type { Model } from '../../../src/core/model/types';

test('formatCount: three significant digits with K/M/G', () => {
  assert.equal(formatCount(2_359_296), '2.36M');
  assert.equal(formatCount(412), '412');
  assert.equal(formatCount(8192), '8.19K');
  assert.equal(formatCount(12_300), '12.3K');
  assert.equal(formatCount(100_000), '100K');
  assert.equal(formatCount(1_000_000), '1M');
  assert.equal(formatCount(7_000_000_000), '7G');
  assert.equal(formatShape([768, 3072]), '768×3072');
});

test('formatInteger: exact with thousands separators; formatBytes: binary units, three significant digits', () => {
  assert.equal(formatInteger(9316), '9,316');
  assert.equal(formatInteger(2_359_296), '2,359,296');
  assert.equal(formatInteger(412), '412');
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(5 * 2 ** 20), '5 MiB');
  assert.equal(formatBytes(123.4 * 2 ** 30), '123 GiB');
});

test('formatSaved: minus sign, rounded percent, 0 when nothing saved', () => {
  assert.equal(formatSaved(100, 66), '−34 %');
  assert.equal(formatSaved(100, 100), '0 %');
  assert.equal(formatSaved(100, 120), '0 %');
});

test('moduleSegments keeps numeric indices with their container', () => {
  assert.deepEqual(moduleSegments('encoder.layers.0.self_attn.q_proj'), ['encoder', 'layers.0', 'self_attn', 'q_proj']);
  assert.deepEqual(moduleSegments('onnx::MatMul_123'), ['onnx::MatMul_123']);
  assert.deepEqual(moduleSegments('0.weight'), ['0', 'weight']);
  assert.deepEqual(moduleSegments('blocks.3.7.fc'), ['blocks.3.7', 'fc']);
});

test('quickPickText shows $(icon) syntax literally', () => {
  assert.equal(quickPickText('$(alert) x'), '$\u200b(alert) x');
});

test('sparklines: one point per σ (≤ 32), monotone for a descending spectrum, finite for zeros', () => {
  const sv = Float64Array.from({ length: 64 }, (_, i) => Math.exp(-i / 8));
  const points = /points="([^"]+)"/.exec(sparklineSvg(sv, 'dark'))![1]!.split(' ').map((p) => p.split(',').map(Number));
  assert.equal(points.length, 32);
  for (let i = 1; i < points.length; i++) assert.ok(points[i]![1]! >= points[i - 1]![1]!, 'y grows downward as σ falls');
  const withZeros = sparklineSvg(Float64Array.from([3, 1, 0, 0]), 'light');
  assert.doesNotMatch(withZeros, /NaN|Infinity/);
  const chart = spectrumChartSvg(sv, 10, 'light');
  assert.equal((chart.match(/<polyline/g) ?? []).length, 2, 'σ and cumulative energy');
  assert.match(chart, /stroke-dasharray/, 'the 95 % cut');
});

test('spectrumImages writes light and dark files named by the weight hash', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rankscope-spark-'));
  const files = spectrumImages(dir, 'ab'.repeat(32), Float64Array.from([2, 1, 0.5]), 2);
  for (const f of [files.icon.light, files.icon.dark, files.chart.light, files.chart.dark]) assert.match(readFileSync(f, 'utf8'), /^<svg /);
  assert.ok(files.icon.light.includes('abababab'));
});

test('markdownReport escapes untrusted layer names so table cells stay intact', () => {
  const layer = {
    name: 'evil|name*<b>', op: 'MatMul', weight: 'w', shape: [4, 3], tensorShape: [3, 4], layout: 'in_out', dtype: 'float32',
    params: 12, biasParams: 0, bytes: 48, nodes: ['n'], factorizable: true,
  } as const;
  const model = {
    summary: {
      path: '/m/model.onnx', fileSize: 100, format: 'onnx', irVersion: 8, opsets: [{ domain: '', version: 17 }],
      producer: { name: 'p', version: '1' }, inputs: [], outputs: [], totalParams: 12, factorizableParams: 12, metadata: {},
    },
    layers: [layer],
    tensor: () => undefined,
  } as unknown as Model;
  const text = markdownReport(model, () => undefined, { original: 12, current: 12 });
  const row = text.split('\n').find((l) => l.includes('evil'))!;
  assert.ok(row.includes('evil\\|name\\*\\<b\\>'), row);
  assert.equal(row.split(/(?<!\\)\|/).length, 11, 'nine cells');
});
