// The spectrum panel's live numbers (energy kept, parameters after, break-even rank, energy
// thresholds) against numpy's LAPACK SVD and an explicit truncated reconstruction; the Pareto
// front against its definition; the CSV export against a CSV reader's view.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runPython } from '../../helpers/python';
import { energyCurve, rankForEnergy, spectrumCsv, summarizeCut } from '../../../webview/spectrum/rank';
import type { SpectrumSeries } from '../../../webview/spectrum/protocol';
import { paretoFront } from '../../../src/core/eval/pareto';

// numpy: σ of seeded random matrices (one with a decaying spectrum, one 3-group conv-like stack), and
// for a few ranks k the energy kept measured from the truncated reconstruction ‖A_k‖²/‖A‖² and the
// sizes of the balanced factors A = U√Σ (m×k), B = √Σ Vᵀ (k×n).
const reference = JSON.parse(runPython(`
import json, numpy as np
rng = np.random.default_rng(7)
out = {}
m, n = 48, 20
W = rng.standard_normal((m, n)) @ np.diag(np.exp(-np.arange(n) / 4.0)) @ rng.standard_normal((n, n))
U, s, Vt = np.linalg.svd(W, full_matrices=False)
ks = [1, 3, 7, 13, 20]
def kept(k):
    Ak = (U[:, :k] * s[:k]) @ Vt[:k]
    return float(np.sum(Ak * Ak) / np.sum(W * W))
def factor_params(k):
    A = U[:, :k] * np.sqrt(s[:k]); B = np.sqrt(s[:k])[:, None] * Vt[:k]
    return int(A.size + B.size)
out['dense'] = dict(shape=[m, n], sv=s.tolist(), ks=ks, kept=[kept(k) for k in ks], params=[factor_params(k) for k in ks])
# grouped: 3 groups of 8x12 (Conv out=24, in/groups*kh*kw=12)
groups = [rng.standard_normal((8, 12)) * (g + 1) for g in range(3)]
svs = [np.linalg.svd(G, compute_uv=False) for G in groups]
total = sum(float(np.sum(G * G)) for G in groups)
def gkept(k):
    acc = 0.0
    for G in groups:
        u, ss, vt = np.linalg.svd(G, full_matrices=False)
        Gk = (u[:, :k] * ss[:k]) @ vt[:k]
        acc += float(np.sum(Gk * Gk))
    return acc / total
out['grouped'] = dict(shape=[24, 12], svs=[v.tolist() for v in svs], ks=[1, 2, 5, 8], kept=[gkept(k) for k in [1, 2, 5, 8]])
print(json.dumps(out))
`));

function series(over: Partial<SpectrumSeries> & Pick<SpectrumSeries, 'shape' | 'singularValues'>): SpectrumSeries {
  return {
    layer: 'l', groups: 1, params: over.shape[0] * over.shape[1],
    energyRank: { '0.9': 1, '0.95': 1, '0.99': 1 }, stableRank: 1, factorizable: true, ...over,
  };
}

test('energy kept and parameters after a cut match numpy (dense layer)', () => {
  const r = reference.dense;
  const s = series({ shape: r.shape, singularValues: r.sv });
  r.ks.forEach((k: number, i: number) => {
    const cut = summarizeCut(s, k);
    assert.ok(Math.abs(cut.energyKept - r.kept[i]) < 1e-9, `k=${k}: ${cut.energyKept} vs numpy ${r.kept[i]}`);
    assert.equal(cut.paramsAfter, r.params[i]);
    assert.equal(cut.paramsBefore, 48 * 20);
  });
  const curve = energyCurve(s);
  assert.equal(curve.length, 20);
  r.ks.forEach((k: number, i: number) => assert.ok(Math.abs(curve[k - 1]! - r.kept[i]) < 1e-9));
});

test('grouped convs: energy is pooled over the groups at the same per-group rank (numpy reconstruction)', () => {
  const r = reference.grouped;
  const merged = (r.svs as number[][]).flat().sort((a, b) => b - a);
  const s = series({ shape: r.shape, singularValues: merged, groups: 3, groupSingularValues: r.svs });
  r.ks.forEach((k: number, i: number) => {
    const cut = summarizeCut(s, k);
    assert.ok(Math.abs(cut.energyKept - r.kept[i]) < 1e-9, `k=${k}: ${cut.energyKept} vs ${r.kept[i]}`);
    assert.equal(cut.paramsAfter, 3 * k * (8 + 12));
  });
  assert.equal(summarizeCut(s, 99).rank, 8, 'rank is clamped to min(rows per group, cols)');
  assert.ok(Math.abs(energyCurve(s)[4]! - r.kept[2]) < 1e-9);
});

test('break-even rank is the largest k with k(m+n) < mn', () => {
  for (const [m, n] of [[4, 4], [3, 4], [768, 3072], [1, 10], [100, 101]] as const) {
    const s = series({ shape: [m, n], singularValues: Array.from({ length: Math.min(m, n) }, (_, i) => 1 / (i + 1)) });
    const be = summarizeCut(s, 1).breakEvenRank;
    let brute = 0;
    for (let k = 1; k <= Math.min(m, n); k++) if (k * (m + n) < m * n) brute = k;
    assert.equal(be, brute, `${m}×${n}`);
    if (be > 0) assert.ok(summarizeCut(s, be).saved > 0 && summarizeCut(s, be + 1).saved <= 0);
  }
});

test('rankForEnergy is the smallest rank reaching the threshold', () => {
  const s = series({ shape: reference.dense.shape, singularValues: reference.dense.sv });
  for (const f of [0.5, 0.9, 0.95, 0.99, 1]) {
    const k = rankForEnergy(s, f);
    assert.ok(summarizeCut(s, k).energyKept >= f - 1e-12);
    if (k > 1) assert.ok(summarizeCut(s, k - 1).energyKept < f, `k=${k} for ${f} is not minimal`);
  }
});

test('Pareto front equals the brute-force set of non-dominated points', () => {
  let seed = 12345;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let trial = 0; trial < 50; trial++) {
    const pts = Array.from({ length: 1 + Math.floor(rand() * 30) }, (_, i) => ({ id: i, c: Math.floor(rand() * 10), a: Math.floor(rand() * 10) }));
    const front = paretoFront(pts, (p) => p.c, (p) => p.a).map((p) => p.id);
    const dominated = (p: typeof pts[0]): boolean =>
      pts.some((q) => q.c <= p.c && q.a >= p.a && (q.c < p.c || q.a > p.a));
    // Among exact duplicates one representative is kept; compare on (cost, accuracy) pairs.
    const key = (id: number): string => `${pts[id]!.c},${pts[id]!.a}`;
    const expected = [...new Set(pts.filter((p) => !dominated(p)).map((p) => key(p.id)))].sort();
    assert.deepEqual(front.map(key).sort(), expected);
  }
});

test('CSV: quoted names, no spreadsheet formulas, one row per σ', () => {
  const a = series({ layer: 'enc,"q"', shape: [2, 3], singularValues: [3, 4] });
  const b = series({ layer: '=HYPERLINK("x")', shape: [1, 3], singularValues: [5] });
  const csv = spectrumCsv([a, b]);
  const lines = csv.trimEnd().split('\r\n');
  assert.equal(lines.length, 3);
  assert.equal(lines[0], `index,"enc,""q"" sigma","enc,""q"" energy","'=HYPERLINK(""x"") sigma","'=HYPERLINK(""x"") energy"`);
  assert.equal(lines[1], '1,3,0.36,5,1');
  assert.equal(lines[2], '2,4,1,,');
});
