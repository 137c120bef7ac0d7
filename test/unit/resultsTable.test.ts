// The results table's options and its 'weighted' allocation weights (the runs themselves are
// measured by `npm run results`; a subset: --epochs 1 --cuts 0.5 --allocations energy).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { macWeights } from '../../src/cli/resultsTable';
import type { MacsProfile } from '../../src/core/eval/macs';

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, '../../src/cli/main.ts'), ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('demo --table: a bad subset option is exit 2 with one line naming the choices', () => {
  for (const [args, message] of [
    [['--allocations', 'energy,bogus'], /--allocations: 'bogus' is not one of energy, uniform, weighted, sensitivity, whitened/],
    [['--methods', 'qr'], /--methods: 'qr' is not one of svd, whitened/],
    [['--cuts', '0.5,1.5'], /--cuts: 1.5 is not a fraction in \(0, 1\)/],
  ] as const) {
    const r = cli('demo', '--table', '-o', join(__dirname, 'never-written'), ...args);
    assert.equal(r.code, 2, r.err);
    assert.equal(r.err.trim().split('\n').length, 1, r.err);
    assert.match(r.err, message);
  }
  assert.equal(existsSync(join(__dirname, 'never-written')), false, 'nothing written before the options are checked');
});

test("'weighted' weights are 1 / MACs per parameter with a mean of 1; layers not measured are left out", () => {
  const layer = (name: string, applications: number | null) => ({ layer: name, macs: applications === null ? null : applications * 10, applications, uses: [] });
  const profile: MacsProfile = { ok: true, total: 0, batch: 1, input: { source: 'declared', shapes: {} }, notes: [], layers: [layer('a', 800), layer('b', 200), layer('head', 1), layer('sub', null)] };
  const w = macWeights(profile);
  const raw = [1 / 800, 1 / 200, 1];
  const mean = raw.reduce((x, y) => x + y, 0) / 3;
  assert.deepEqual(Object.keys(w), ['a', 'b', 'head']);
  for (const [i, k] of ['a', 'b', 'head'].entries()) assert.ok(Math.abs(w[k] - raw[i] / mean) < 1e-12, k);
  assert.deepEqual(macWeights({ ok: false }), {});
});
