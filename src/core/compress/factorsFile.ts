// Compressing a state dict (PyTorch checkpoint, safetensors): there is no graph to rewrite, so the
// result is a safetensors file of factors. Each planned layer's weight is replaced by
// `<layer>.lowrank_A` / `<layer>.lowrank_B` (balanced, in the weight's dtype, laid out as
// storage.ts stores them: Linear A [out, k], B [k, in]; conv A [out, k, 1…], B [k·groups, in/groups,
// k…]); every other tensor is copied as it was. The metadata holds the plan and one record per
// factorized layer, which rankscope_torch.apply_factors reads to rebuild the user's nn.Module.
import { basename, resolve } from 'node:path';
import { RankscopeError, throwIfCancelled } from '../errors';
import { encodeFloats } from '../formats/onnx/write';
import { writeSafetensors, type SafeTensorSource } from '../formats/safetensors';
import type { StateDictModel } from '../formats/stateDict';
import { computeSpectra } from '../linalg';
import { layerMatrices } from '../model/matrix';
import type { Layer, MatrixLayout } from '../model/types';
import { METHOD } from './metadata';
import { layerHash, makePlan, recheckRow, selectLayers, type CompressRequest, type Plan, type PlanLayer } from './plan';
import { factorInWorkers, type GroupFactors } from './pool';
import type { PlanSpectraOptions } from './spectra';
import { storeFactors } from './storage';

/** safetensors metadata keys of a factors file. */
export const FACTORS_METADATA_KEY = 'rankscope.factors';
export const PLAN_METADATA_KEY = 'rankscope.plan';

/** What apply_factors needs to rebuild one layer (docs/pytorch.md). */
export interface FactorRecord {
  layer: string;
  /** The dense weight's state-dict key, and the module and parameter it names. */
  weight: string;
  module: string;
  param: string;
  op: Layer['op'];
  layout: MatrixLayout;
  factors: [string, string];
  rank: number;
  groups: number;
  tensorShape: number[];
  dtype: string;
  energyKept: number;
  method: string;
}

/** The plan for a state-dict model: spectra (cached) and the policy; no graph check is needed. */
export async function planStateDict(model: StateDictModel, request: CompressRequest, options: PlanSpectraOptions = {}): Promise<Plan> {
  const layers = selectLayers(model, request.layers).filter((l) => l.factorizable);
  const spectra = layers.length
    ? await computeSpectra(model, { layers: layers.map((l) => l.name), order: 'module', signal: options.signal, cacheDir: options.cacheDir, threads: options.threads, onResult: () => undefined })
    : [];
  return makePlan(model, spectra, request);
}

/** Writes the factors file for `plan` to `outPath` (a new file, through a temp file). */
export async function writeFactorsFile(model: StateDictModel, plan: Plan, outPath: string, options: { signal?: AbortSignal; threads?: number } = {}): Promise<{ path: string; records: FactorRecord[] }> {
  const out = resolve(outPath);
  if (!/\.safetensors$/i.test(out)) {
    throw new RankscopeError('BAD_ARGUMENT', `The output ${basename(outPath)} must be a .safetensors file: compressing a state dict writes its factors.`, 'Use e.g. -o model.lowrank.safetensors.');
  }
  const work = matchRows(model, plan);
  const factors = await factorInWorkers(work.length, (i) => ({
    label: `Layer '${work[i].layer.name}'`, k: work[i].row.k, matrices: layerMatrices(model, work[i].layer),
  }), options);
  const replaced = new Map<string, { record: FactorRecord; a: SafeTensorSource; b: SafeTensorSource }>();
  work.forEach(({ row, layer }, i) => {
    const energyKept = keptShare(factors[i]);
    const choice = recheckRow(row, energyKept);
    if (choice.skipped) throw new RankscopeError('BAD_ARGUMENT', `Layer '${row.layer}': ${choice.reason}.`, 'Lower k, or set "force": true in the plan.');
    const [a, b] = storeFactors(layer.layout, factors[i], layer.tensorShape);
    const names: [string, string] = [`${layer.name}.lowrank_A`, `${layer.name}.lowrank_B`];
    for (const n of names) {
      if (model.tensor(n)) throw new RankscopeError('UNSUPPORTED', `The checkpoint already has a tensor '${n}'; it cannot hold factors under that name.`);
    }
    const dot = layer.weight.lastIndexOf('.');
    replaced.set(layer.weight, {
      record: {
        layer: layer.name, weight: layer.weight, module: dot < 0 ? '' : layer.weight.slice(0, dot), param: layer.weight.slice(dot + 1),
        op: layer.op, layout: layer.layout, factors: names, rank: row.k, groups: factors[i].length,
        tensorShape: [...layer.tensorShape], dtype: layer.dtype, energyKept, method: METHOD,
      },
      a: { dtype: layer.dtype, shape: a.dims, bytes: encodeFloats(a.data, layer.dtype, names[0]) },
      b: { dtype: layer.dtype, shape: b.dims, bytes: encodeFloats(b.data, layer.dtype, names[1]) },
    });
  });
  throwIfCancelled(options.signal);
  const records = [...replaced.values()].map((r) => r.record);
  function* tensors(): Generator<[string, SafeTensorSource]> {
    for (const name of model.tensorNames()) {
      const r = replaced.get(name);
      if (r) {
        yield [r.record.factors[0], r.a];
        yield [r.record.factors[1], r.b];
        continue;
      }
      const t = model.tensor(name)!;
      yield [name, { dtype: t.dtype, shape: [...t.shape], bytes: () => t.bytes() }];
    }
  }
  await writeSafetensors(out, tensors(), {
    format: 'pt',
    [PLAN_METADATA_KEY]: JSON.stringify(plan),
    [FACTORS_METADATA_KEY]: JSON.stringify(records),
    'rankscope.source': model.summary.path,
  }, { signal: options.signal, inputs: [model.summary.path] });
  return { path: out, records };
}

/** The plan's active rows with their layers; plans for other weights are refused (hash check). */
function matchRows(model: StateDictModel, plan: Plan): { row: PlanLayer; layer: Layer }[] {
  return plan.layers.filter((row) => !row.skipped).map((row) => {
    const layer = model.layers.find((l) => l.name === row.layer);
    if (!layer) throw new RankscopeError('PLAN_MISMATCH', `The plan names layer '${row.layer}', which ${basename(model.summary.path)} does not have.`, 'Make a new plan for this model.');
    if (layerHash(model, layer) !== row.weightHash) {
      throw new RankscopeError('PLAN_MISMATCH', `Layer '${row.layer}' of ${basename(model.summary.path)} has different weights than the plan was made for (hash mismatch).`,
        'Plans only apply to the model they were made from; make a new plan.');
    }
    if ((layer.groups ?? 1) !== row.groups) {
      throw new RankscopeError('PLAN_MISMATCH', `Layer '${row.layer}' has ${layer.groups ?? 1} groups here but ${row.groups} in the plan.`, 'Make a new plan (the sidecar groups changed?).');
    }
    return { row, layer };
  });
}

function keptShare(groups: GroupFactors[]): number {
  const total = groups.reduce((s, g) => s + g.total, 0);
  return total > 0 ? groups.reduce((s, g) => s + g.energyKept * g.total, 0) / total : 1;
}
