// The plan: the compression recipe as a JSON document (schema: docs/plan.md). makePlan is pure
// and fast (no SVD, only policies over given spectra) so sweeps can call it per point.
import { createHash } from 'node:crypto';
import { RankscopeError } from '../errors';
import type { Layer, Model } from '../model/types';
import { allocateBudget, validateBudget, type Allocation, type BudgetRequest } from './budget';
import { chooseRank, decide, energyCurve, layerFactorShape, maxRank, policyKind, type FactorShape, type RankChoice, type RankPolicy } from './policy';

export const PLAN_FORMAT = 'rankscope.plan';
export const PLAN_VERSION = 1;

/** What the user asked for: a per-layer policy or a whole-model budget, over a selection of layers. */
export type CompressRequest = (RankPolicy | BudgetRequest) & {
  /** Layer names or globs (`*`, `?`); default: every factorizable layer. */
  layers?: string[];
};

/** The spectrum of one layer (LINALG's LayerSpectrum fits). */
export interface SpectrumLike {
  layer: string;
  singularValues: Float64Array;
  /** Per conv group, when the layer has groups > 1. */
  groups?: Float64Array[];
}

export interface PlanLayer {
  layer: string;
  op: Layer['op'];
  /** Dense weight name (for an already factorized layer: the original weight name). */
  weight: string;
  /** [out, in] (convs: [out, in/groups·∏kernel]). */
  shape: [number, number];
  groups: number;
  /** SHA-256 of the weight tensor (of both factors for a factorized layer): applying to other weights is refused. */
  weightHash: string;
  policy: RankPolicy | { budget: number; allocation: Allocation };
  /** The rank to apply. Edit this by hand to change the plan. */
  k: number;
  paramsBefore: number;
  paramsAfter: number;
  /** Σ kept σ² / ‖W‖²_F (of the original dense weight). */
  energyKept: number;
  /** The layer is already factorized at this rank; applying re-factorizes A·B. */
  currentRank?: number;
  force?: boolean;
  skipped?: boolean;
  reason?: string;
}

export interface Plan {
  format: typeof PLAN_FORMAT;
  version: number;
  /** The model file the plan was made for (informational; hashes decide). */
  model: string;
  request: CompressRequest;
  layers: PlanLayer[];
  totals: PlanTotals;
}

export interface PlanTotals {
  /** Layers that will be factorized. */
  compressed: number;
  skipped: number;
  /** Weight parameters of the planned layers, before and after. */
  paramsBefore: number;
  paramsAfter: number;
  /** All parameters of the model, before and after. */
  modelParamsBefore: number;
  modelParamsAfter: number;
}

/** Hash that identifies a layer's weights: the dense tensor's, or both factors' for a factorized layer. */
export function layerHash(model: Pick<Model, 'tensor'>, layer: Layer): string {
  if (layer.compressed) {
    const [a, b] = layer.compressed.factors.map((n) => model.tensor(n));
    if (!a || !b) throw new RankscopeError('CORRUPT', `Layer '${layer.name}': factor tensors ${layer.compressed.factors.join(', ')} are missing.`);
    return createHash('sha256').update(a.hash()).update(b.hash()).digest('hex');
  }
  const t = model.tensor(layer.weight);
  if (!t) throw new RankscopeError('NOT_FOUND', `Layer '${layer.name}': weight '${layer.weight}' is not in the model.`);
  return t.hash();
}

function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`);
}

/** A layer compression can act on: a dense factorizable weight, or a factorized pair (re-compressed at a lower rank, or restored). */
export function isCompressible(layer: Layer): boolean {
  return layer.factorizable || layer.compressed !== undefined;
}

/** Layers named by `patterns` (names or globs), or every factorizable layer. Unknown names are errors. */
export function selectLayers(model: Model, patterns?: string[]): Layer[] {
  if (!patterns || patterns.length === 0) return model.layers.filter((l) => l.factorizable);
  const chosen = new Set<Layer>();
  for (const pattern of patterns) {
    const isGlob = /[*?]/.test(pattern);
    const matches = isGlob ? model.layers.filter((l) => globToRegExp(pattern).test(l.name)) : model.layers.filter((l) => l.name === pattern || l.weight === pattern);
    if (matches.length === 0) {
      const names = model.layers.slice(0, 5).map((l) => l.name).join(', ');
      throw new RankscopeError('NOT_FOUND', `No layer ${isGlob ? 'matches' : 'named'} '${pattern}'.`,
        `Run \`rankscope inspect\` for the list (${names}${model.layers.length > 5 ? ', …' : ''}).`);
    }
    for (const l of matches) chosen.add(l);
  }
  return model.layers.filter((l) => chosen.has(l));
}

function spectraOf(layer: Layer, spectra: Map<string, SpectrumLike>): Float64Array[] {
  const s = spectra.get(layer.name);
  if (!s) throw new RankscopeError('BAD_ARGUMENT', `No spectrum for layer '${layer.name}'.`, 'Compute the spectra of every selected layer first.');
  return s.groups && s.groups.length > 1 ? s.groups : [s.singularValues];
}

export function isBudget(request: CompressRequest): request is BudgetRequest & { layers?: string[] } {
  return (request as BudgetRequest).budget !== undefined;
}

/**
 * The plan for `request` over `model`. `spectra` must hold every selected layer (for an already
 * factorized layer: the spectrum of A·B). `unsupported(layer)` may veto layers whose graph use
 * cannot be rewritten (apply.ts passes the graph check).
 */
export function makePlan(
  model: Model,
  spectra: Iterable<SpectrumLike>,
  request: CompressRequest,
  unsupported: (layer: Layer) => string | undefined = () => undefined,
): Plan {
  const byName = new Map<string, SpectrumLike>();
  for (const s of spectra) byName.set(s.layer, s);
  const budget = isBudget(request);
  if (budget) validateBudget(request);
  else policyKind(request);
  const selected = selectLayers(model, request.layers);
  const rows: PlanLayer[] = [];
  const candidates: Layer[] = [];
  for (const layer of selected) {
    const reason = layer.compressed ? unsupported(layer) : layer.factorizable ? unsupported(layer) : layer.reason ?? 'not factorizable';
    const row = baseRow(model, layer, budget ? { budget: request.budget, allocation: request.allocation ?? 'energy' } : policyOf(request));
    if (reason) rows.push({ ...row, skipped: true, reason });
    else {
      rows.push(row);
      candidates.push(layer);
    }
  }
  const choices = budget
    ? allocateBudget(candidates.map((l) => ({ name: l.name, shape: layerFactorShape(l), spectra: spectraOf(l, byName) })), request)
    : new Map(candidates.map((l) => [l.name, choosePolicyRank(model, l, request as RankPolicy, spectraOf(l, byName))]));
  if (!budget && (request as RankPolicy).rank !== undefined && candidates.length) {
    const largest = Math.max(...candidates.map((l) => maxRank(layerFactorShape(l))));
    if ((request as RankPolicy).rank! > largest) {
      throw new RankscopeError('BAD_ARGUMENT', `Rank ${(request as RankPolicy).rank} is out of range: the selected layers allow at most ${largest}.`);
    }
  }
  for (const row of rows) {
    const choice = choices.get(row.layer);
    if (choice) Object.assign(row, rowChoice(choice));
  }
  return { format: PLAN_FORMAT, version: PLAN_VERSION, model: model.summary.path, request, layers: rows, totals: planTotals(model, rows) };
}

/** An already factorized layer cannot grow past its current rank (A·B has no more). */
function choosePolicyRank(model: Model, layer: Layer, policy: RankPolicy, spectra: Float64Array[]): RankChoice {
  const shape = layerFactorShape(layer);
  const choice = chooseRank(policy, shape, spectra);
  const current = layer.compressed?.rank;
  if (current !== undefined && !choice.skipped && choice.k >= current) {
    return { ...choice, skipped: true, reason: `already factorized at rank ${current}; a re-compression must lower it` };
  }
  return choice;
}

export function policyOf(request: CompressRequest): RankPolicy {
  const { layers: _layers, ...policy } = request as RankPolicy & { layers?: string[] };
  return policy;
}

function baseRow(model: Model, layer: Layer, policy: PlanLayer['policy']): PlanLayer {
  const shape = layerFactorShape(layer);
  const row: PlanLayer = {
    layer: layer.name,
    op: layer.op,
    weight: layer.weight,
    shape: [...layer.shape],
    groups: shape.groups,
    weightHash: layerHash(model, layer),
    policy,
    k: layer.compressed?.rank ?? 0,
    paramsBefore: layer.params,
    paramsAfter: layer.params,
    energyKept: layer.compressed?.energyKept ?? 1,
  };
  if (layer.compressed) row.currentRank = layer.compressed.rank;
  if ((policy as RankPolicy).force) row.force = true;
  return row;
}

function rowChoice(choice: RankChoice): Partial<PlanLayer> {
  const out: Partial<PlanLayer> = { k: choice.k, paramsAfter: choice.paramsAfter, energyKept: choice.energyKept };
  if (choice.skipped) {
    out.skipped = true;
    out.reason = choice.reason;
  }
  return out;
}

export function planTotals(model: Model, rows: PlanLayer[]): PlanTotals {
  const active = rows.filter((r) => !r.skipped);
  const paramsBefore = rows.reduce((s, r) => s + r.paramsBefore, 0);
  const paramsAfter = rows.reduce((s, r) => s + (r.skipped ? r.paramsBefore : r.paramsAfter), 0);
  return {
    compressed: active.length,
    skipped: rows.length - active.length,
    paramsBefore,
    paramsAfter,
    modelParamsBefore: model.summary.totalParams,
    modelParamsAfter: model.summary.totalParams - paramsBefore + paramsAfter,
  };
}

/** Energy kept by a (possibly hand-edited) rank, from the spectrum. */
export function energyAt(spectra: Float64Array[], shape: FactorShape, k: number): number {
  return energyCurve(spectra, maxRank(shape))[Math.min(k, maxRank(shape))];
}

/** Parses a plan file's text; structural problems are BAD_ARGUMENT naming the file. */
export function parsePlan(text: string, file: string): Plan {
  let plan: Plan;
  try {
    plan = JSON.parse(text) as Plan;
  } catch (e) {
    throw new RankscopeError('BAD_ARGUMENT', `${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (plan?.format !== PLAN_FORMAT || !Array.isArray(plan.layers)) {
    throw new RankscopeError('BAD_ARGUMENT', `${file} is not a Rankscope plan (format must be "${PLAN_FORMAT}").`, 'Make one with `rankscope compress … --save-plan FILE`.');
  }
  if (plan.version > PLAN_VERSION) {
    throw new RankscopeError('UNSUPPORTED', `${file} is plan version ${plan.version}; this Rankscope reads up to ${PLAN_VERSION}.`);
  }
  for (const row of plan.layers) {
    if (typeof row.layer !== 'string' || typeof row.weightHash !== 'string' || !Array.isArray(row.shape)) {
      throw new RankscopeError('BAD_ARGUMENT', `${file}: a layer entry lacks layer, weightHash or shape.`);
    }
    if (!row.skipped && !(Number.isInteger(row.k) && row.k >= 1)) {
      throw new RankscopeError('BAD_ARGUMENT', `${file}: layer '${row.layer}' has k = ${row.k}; k must be an integer ≥ 1.`);
    }
  }
  return plan;
}

/** Recomputes a row after a hand edit of k: parameters, skip test (force honoured). */
export function recheckRow(row: PlanLayer, energyKept: number): RankChoice {
  const shape = layerFactorShape(row);
  if (row.k > maxRank(shape)) {
    throw new RankscopeError('BAD_ARGUMENT', `Layer '${row.layer}': rank ${row.k} is out of range (at most ${maxRank(shape)}).`);
  }
  return decide(shape, row.k, energyKept, row.force === true);
}
