// `rankscope compress MODEL -o OUT [policy] [--layers …] [--plan PLAN.json] [--dry-run] …`:
// plan (or load a plan), print it as a table with totals, write the compressed model.
import { readFile } from 'node:fs/promises';
import { RankscopeError } from '../core/errors';
import { openModel } from '../core/formats';
import { OnnxModel } from '../core/formats/onnx';
import { StateDictModel } from '../core/formats/stateDict';
import {
  compressToFile, factorizePlan, graphCheck, parsePlan, planAndFactorize, planModel, recomposeLayers, restoreOriginalLayers, selectLayers, withWhitenedSpectra,
  type CompressRequest, type Plan, type WhiteningSource,
} from '../core/compress';
import { isCompressible } from '../core/compress/plan';
import type { GroupFactors } from '../core/compress/pool';
import { isWhitened, whiteningNote } from '../core/compress/whitened';
import { checkOutputs, preflightCheck, type CheckOptions } from '../core/eval/check';
import { checkOutputPath, writeFileAtomic } from '../core/fs/atomicWrite';
import { defaultSpectrumCacheDir } from '../core/linalg';
import { formatBytes, formatInteger } from '../core/format';
import type { Command, CommandIO } from './command';
import { compressStateDict } from './compressStateDict';
import { CALIBRATION_OPTIONS, CALIBRATION_USAGE, methodOption, runCalibration } from './calibrate';
import { fractionOption, intOption, nameList, oneOf, parseOptions, TASK_OPTIONS } from './options';

const USAGE = `Usage: rankscope compress MODEL -o OUT [policy] [options]

  MODEL: an ONNX model (OUT: a new .onnx), or a PyTorch checkpoint / .safetensors state dict
  (OUT: a .safetensors file of factors <layer>.lowrank_A/_B and the untouched tensors; docs/pytorch.md)

  policy (one of; or --plan):
    --rank K           keep K singular triplets per layer
    --energy T         smallest rank keeping a share T of each layer's σ² (e.g. 0.9)
    --rank-ratio R     k = ⌈R·min(m,n)⌉
    --param-ratio B    each layer keeps ≤ B of its weight parameters
    --budget X         cut the selected layers' parameters by X (0.5 or 50%), ranks allocated
                       across layers by energy kept per parameter (--allocation uniform: same ratio;
                       --allocation whitened: least summed output error from the calibration pass,
                       the default with --method whitened)
  --method M         svd (default): plain truncated SVD of W; whitened: SVD of W·S with S from each
                     layer's input Gram on calibration data (SVD-LLM; docs/whitened.md), needs --data
${CALIBRATION_USAGE}
  --layers L         layer names, comma separated, or a glob (encoder.*.fc1); default: all factorizable
  --plan FILE        apply a saved (possibly hand-edited) plan instead of a policy
  --save-plan FILE   write the plan JSON (docs/plan.md)
  --dry-run          print the plan, write nothing (no -o needed)
  --round-to [N]     round ranks up to a multiple of N (default 8)
  --force            factorize even where it saves no parameters
  --check N          run N inputs through both models; print the relative output deviation. Inputs:
                     the first N samples of --data DATA.npz (--input NAME=ARRAY maps arrays to
                     inputs), else random ones; symbolic dimensions other than the batch need
                     --input-shape NAME=1x3x48x320 (repeatable)
  --no-cache         recompute spectra (and the calibration) instead of reading the caches
  --restore L        instead: put back the original weights of factorized layers L (names or glob),
                     read from the source model the compression recorded (its hash checked)
  --recompose L      instead: make factorized layers L dense again as A·B (keeps the compression
                     error; needs no source model)`;

export const compressCommand: Command = {
  name: 'compress',
  summary: 'Compress layers by low-rank SVD factorization; writes a new ONNX model (or a factors file for a state dict).',
  usage: USAGE,
  async run(args, io) {
    // A bare --round-to means multiples of 8 (what GPUs' tensor cores like).
    const argv = args.flatMap((a, i) => (a === '--round-to' && !/^\d/.test(args[i + 1] ?? '') ? ['--round-to', '8'] : [a]));
    const { output: _scoredOutput, ...taskOptions } = TASK_OPTIONS;
    const { values, positionals } = parseOptions(argv, {
      ...taskOptions,
      ...CALIBRATION_OPTIONS,
      method: { type: 'string' },
      output: { type: 'string', short: 'o' },
      rank: { type: 'string' },
      energy: { type: 'string' },
      'rank-ratio': { type: 'string' },
      'param-ratio': { type: 'string' },
      budget: { type: 'string' },
      allocation: { type: 'string' },
      layers: { type: 'string' },
      plan: { type: 'string' },
      'save-plan': { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      'round-to': { type: 'string' },
      force: { type: 'boolean', default: false },
      check: { type: 'string' },
      'input-shape': { type: 'string', multiple: true },
      restore: { type: 'string' },
      recompose: { type: 'string' },
      'no-cache': { type: 'boolean', default: false },
    });
    if (positionals.length !== 1) {
      throw new RankscopeError('BAD_ARGUMENT', positionals.length ? 'Give exactly one model file.' : 'Missing MODEL.', 'Usage: rankscope compress MODEL -o OUT --energy 0.9');
    }
    const dryRun = values['dry-run'];
    const out = values.output;
    if (!dryRun && !out) throw new RankscopeError('BAD_ARGUMENT', 'Missing -o OUT (or use --dry-run).', 'Usage: rankscope compress MODEL -o OUT --energy 0.9');
    // Path problems before any work: an unwritable -o is known at once, not after the spectra.
    for (const path of [out, values['save-plan']]) if (path) checkOutputPath(path, { inputs: [positionals[0]] });
    const checkSamples = values.check === undefined ? 0 : intOption(values.check, '--check');
    const method = methodOption(values.method);
    const calibrated = method === 'whitened' || values.allocation === 'whitened';
    const checkInputs = checkInputsFrom(values);
    if (!checkSamples && !calibrated && (checkInputs.data || checkInputs.inputShapes)) {
      throw new RankscopeError('BAD_ARGUMENT', '--data, --input and --input-shape say what --check feeds (and, with --method whitened, the calibration); they need --check N.');
    }
    if (!calibrated && (values.calibration !== undefined || values['calibration-samples'] !== undefined || values.jitter !== undefined || values['whiten-embeddings'] !== undefined)) {
      throw new RankscopeError('BAD_ARGUMENT', '--calibration, --calibration-samples, --jitter and --whiten-embeddings set up the calibration pass; they need --method whitened (or --allocation whitened).');
    }
    const opened = await openModel(positionals[0], { signal: io.signal });
    if (opened instanceof StateDictModel && calibrated) {
      throw new RankscopeError('UNSUPPORTED', `${positionals[0]} is a state dict: whitened factorization needs the model's graph to measure its layers' inputs.`, 'Export the model to ONNX, or use --method svd.');
    }
    if (opened instanceof StateDictModel) {
      // PyTorch checkpoints and safetensors: factors file instead of a graph (compressStateDict.ts).
      if (values.plan !== undefined && policyGiven(values)) throw new RankscopeError('BAD_ARGUMENT', '--plan replaces the policy options; give one or the other.');
      return compressStateDict(opened, {
        out, dryRun, planFile: values.plan, savePlan: values['save-plan'], noCache: values['no-cache'], restore: values.restore, check: checkSamples,
      }, io, { request: () => requestFrom(values), planTable });
    }
    if (!(opened instanceof OnnxModel)) throw new RankscopeError('UNSUPPORTED', `${positionals[0]} is not a model compress can rewrite.`);
    const model = opened;
    if (checkSamples) preflightCheck(model, checkInputs);

    if (values.restore !== undefined || values.recompose !== undefined) {
      if (values.restore !== undefined && values.recompose !== undefined) throw new RankscopeError('BAD_ARGUMENT', 'Give --restore or --recompose, not both.');
      const original = values.restore !== undefined;
      const flag = original ? '--restore' : '--recompose';
      const pattern = (original ? values.restore : values.recompose)!;
      if (!out) throw new RankscopeError('BAD_ARGUMENT', `${flag} needs -o OUT.`);
      const names = selectLayers(model, nameList(pattern)).filter((l) => l.compressed).map((l) => l.name);
      if (!names.length) throw new RankscopeError('NOT_FOUND', `No factorized layer matches '${pattern}'.`, 'Run `rankscope inspect` to see which layers are factorized.');
      const result = await (original ? restoreOriginalLayers : recomposeLayers)(model, names, out, { signal: io.signal });
      for (const r of result.restored) {
        io.out(original ? `restored ${r.layer}: original weights from ${r.sourceFile}` : `recomposed ${r.layer} to dense A·B (original was ${r.sourceFile ?? 'an unrecorded file'})`);
      }
      io.out(`wrote ${result.path}`);
      return 0;
    }

    let plan: Plan;
    let factors: Awaited<ReturnType<typeof planAndFactorize>>['factors'] | undefined;
    let whitening: WhiteningSource | undefined;
    if (calibrated) {
      const planning = { signal: io.signal, cacheDir: values['no-cache'] ? undefined : defaultSpectrumCacheDir() };
      const saved = values.plan === undefined ? undefined : await readPlan(values.plan);
      if (saved && policyGiven(values)) throw new RankscopeError('BAD_ARGUMENT', '--plan replaces the policy options; give one or the other.');
      const request = saved?.request ?? requestFrom(values);
      const check = graphCheck(model);
      // A saved plan calibrates the layers it compresses; a policy, every layer it may select.
      const layers = saved
        ? model.layers.filter((l) => saved.layers.some((r) => !r.skipped && r.layer === l.name))
        : selectLayers(model, request.layers).filter((l) => isCompressible(l) && !check(l));
      const calibration = await runCalibration(model, layers, values, io, values['no-cache'] === true);
      whitening = calibration.whitening;
      plan = saved ?? await planModel(model, await withWhitenedSpectra(model, request, whitening, { signal: io.signal }), planning);
      if (method === 'whitened' && !dryRun && plan.totals.compressed > 0) {
        factors = await factorizePlan(model, plan, { signal: io.signal, whitening });
        reportWhitening(factors, whitening, io);
      }
      if (method !== 'whitened') whitening = undefined;
    } else if (values.plan !== undefined) {
      if (policyGiven(values)) throw new RankscopeError('BAD_ARGUMENT', '--plan replaces the policy options; give one or the other.');
      plan = await readPlan(values.plan);
    } else {
      const planning = { signal: io.signal, cacheDir: values['no-cache'] ? undefined : defaultSpectrumCacheDir() };
      // Writing: the factors come from the same per-layer pass as the spectra (one reduction per layer).
      if (dryRun) plan = await planModel(model, requestFrom(values), planning);
      else ({ plan, factors } = await planAndFactorize(model, requestFrom(values), planning));
    }
    for (const line of planTable(plan)) io.out(line);

    if (values['save-plan']) {
      await writeFileAtomic(values['save-plan'], JSON.stringify(plan, null, 2) + '\n', { inputs: [positionals[0]], signal: io.signal });
      io.out(`plan saved to ${values['save-plan']}`);
    }
    if (dryRun) return 0;
    if (plan.totals.compressed === 0) throw new RankscopeError('BAD_ARGUMENT', 'No layer would be compressed; nothing written.', 'See the reasons in the table above.');
    const t0 = performance.now();
    const written = await compressToFile(model, plan, out!, { signal: io.signal, factors, whitening });
    // Both sides count external data: the model file and the data files it uses.
    const before = model.summary.fileSize;
    const after = written.bytes;
    io.out(`wrote ${written.path}: ${formatBytes(before)} → ${formatBytes(after)} (${percent(after, before)}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    if (checkSamples) await reportCheck(model, written.path, checkSamples, checkInputs, io);
    return 0;
  },
};

type Values = Record<string, string | string[] | boolean | undefined>;

/** --data / --input NAME=ARRAY / --input-shape NAME=1x3x48x320 as check options. */
function checkInputsFrom(values: Values): Pick<CheckOptions, 'data' | 'inputShapes'> {
  const pairs = (flag: string, pattern: RegExp, form: string) => ((values[flag] as string[] | undefined) ?? []).map((text) => {
    const m = pattern.exec(text);
    if (!m) throw new RankscopeError('BAD_ARGUMENT', `--${flag} takes ${form}; got '${text}'.`);
    return [m[1], m[2]] as const;
  });
  const inputs = Object.fromEntries(pairs('input', /^([^=]+)=(.+)$/, 'NAME=ARRAY'));
  const shapes = pairs('input-shape', /^(.+)=(\d+(?:[x×,]\d+)*)$/, 'NAME=DIMS, e.g. x=1x3x48x320');
  const data = values.data as string | undefined;
  if (!data && Object.keys(inputs).length) throw new RankscopeError('BAD_ARGUMENT', '--input maps arrays of --data; give --data DATA.npz too.');
  return {
    ...(data ? { data: { data, ...(Object.keys(inputs).length ? { inputs } : {}) } } : {}),
    ...(shapes.length ? { inputShapes: Object.fromEntries(shapes.map(([name, dims]) => [name, dims.split(/[x×,]/).map(Number)])) } : {}),
  };
}

async function readPlan(file: string): Promise<Plan> {
  const text = await readFile(file, 'utf8').catch(() => {
    throw new RankscopeError('NOT_FOUND', `Plan file not found: ${file}`);
  });
  return parsePlan(text, file);
}

function policyGiven(values: Values): boolean {
  return ['rank', 'energy', 'rank-ratio', 'param-ratio', 'budget'].some((k) => values[k] !== undefined);
}

function requestFrom(values: Values): CompressRequest {
  const chosen = ['rank', 'energy', 'rank-ratio', 'param-ratio', 'budget'].filter((k) => values[k] !== undefined);
  if (chosen.length !== 1) {
    throw new RankscopeError('BAD_ARGUMENT', chosen.length ? `Give one policy; got --${chosen.join(', --')}.` : 'Missing a policy.',
      'Use one of --rank K, --energy T, --rank-ratio R, --param-ratio B, --budget X, or --plan FILE.');
  }
  const layers = nameList(values.layers as string | undefined);
  const roundTo = values['round-to'] === undefined ? undefined : intOption(values['round-to'] as string, '--round-to');
  const common = { ...(layers && { layers }), ...(roundTo && { roundTo }) };
  const text = values[chosen[0]] as string;
  switch (chosen[0]) {
    case 'rank': return { rank: intOption(text, '--rank'), force: values.force === true, ...common };
    case 'energy': return { energy: fractionOption(text, '--energy'), force: values.force === true, ...common };
    case 'rank-ratio': return { rankRatio: fractionOption(text, '--rank-ratio'), force: values.force === true, ...common };
    case 'param-ratio': return { paramRatio: fractionOption(text, '--param-ratio'), force: values.force === true, ...common };
    default: {
      // 'sensitivity' needs probes measured on evaluation data and 'weighted' per-layer weights: a sweep has them.
      // With --method whitened the calibration is there anyway: its output errors allocate the budget
      // (as Compress Model to Budget does in the editor); --allocation energy takes plain's ranks.
      const fallback = values.method === 'whitened' ? 'whitened' : 'energy';
      const allocation = oneOf(values.allocation as string | undefined, '--allocation', ['energy', 'uniform', 'whitened'] as const) ?? fallback;
      return { budget: fractionOption(text, '--budget'), allocation, ...common };
    }
  }
}

/** What the whitening needed per layer (rank-deficient Grams), and the output energy kept on the calibration data. */
function reportWhitening(factors: Map<string, GroupFactors[]>, whitening: WhiteningSource, io: CommandIO): void {
  let worst: { layer: string; kept: number } | undefined;
  let sum = 0;
  for (const [layer, groups] of factors) {
    const infos = groups.filter(isWhitened).map((g) => g.whitening);
    const note = whiteningNote(layer, infos, whitening.grams.get(layer)!);
    if (note) io.err(`note: ${note}`);
    const total = groups.reduce((s, g) => s + g.total, 0);
    const kept = total > 0 ? groups.reduce((s, g) => s + g.energyKept * g.total, 0) / total : 1;
    sum += kept;
    if (!worst || kept < worst.kept) worst = { layer, kept };
  }
  if (worst) {
    const pct = (x: number) => `${(x * 100).toFixed(2)} %`;
    io.out(`whitened: output energy kept on the calibration data (1 − ‖(W − AB)X‖²/‖WX‖²): mean ${pct(sum / factors.size)}, lowest ${pct(worst.kept)} (${worst.layer})`);
  }
}

function percent(after: number, before: number): string {
  return before ? `${((after / before) * 100).toFixed(1)} %` : '–';
}

/** The plan as a table (layer, shape, k, parameters before → after, energy kept) and totals. */
export function planTable(plan: Plan): string[] {
  const rows = plan.layers.map((l) => [
    l.layer,
    `${l.shape[0]}×${l.shape[1]}${l.groups > 1 ? ` g${l.groups}` : ''}`,
    l.skipped ? '–' : l.currentRank ? `${l.currentRank}→${l.k}` : String(l.k),
    formatInteger(l.paramsBefore),
    l.skipped ? '–' : formatInteger(l.paramsAfter),
    l.skipped ? '–' : `${(l.energyKept * 100).toFixed(2)} %`,
    l.skipped ? `skipped: ${l.reason}` : '',
  ]);
  const head = ['layer', 'shape', 'k', 'params', 'after', 'energy', ''];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const right = new Set([2, 3, 4, 5]);
  const fmt = (r: string[]) => r.map((c, i) => (right.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  const t = plan.totals;
  return [
    fmt(head),
    ...rows.map(fmt),
    '',
    `${t.compressed} of ${plan.layers.length} layers factorized${t.skipped ? `, ${t.skipped} skipped` : ''}`,
    `layer parameters: ${formatInteger(t.paramsBefore)} → ${formatInteger(t.paramsAfter)} (${percent(t.paramsAfter, t.paramsBefore)})`,
    `model parameters: ${formatInteger(t.modelParamsBefore)} → ${formatInteger(t.modelParamsAfter)} (${percent(t.modelParamsAfter, t.modelParamsBefore)})`,
  ];
}

async function reportCheck(model: Parameters<typeof checkOutputs>[0], path: string, samples: number, inputs: Pick<CheckOptions, 'data' | 'inputShapes'>, io: CommandIO): Promise<void> {
  const r = await checkOutputs(model, path, samples, { signal: io.signal, ...inputs });
  const what = r.source === 'random' ? 'random inputs' : `samples of ${r.source}`;
  const shapes = Object.entries(r.shapes).map(([name, dims]) => `${name} ${dims.join('×')}`).join(', ');
  io.out(`check: ${r.samples} ${what} (${shapes}), relative output deviation max ${r.maxRelative.toExponential(3)}, mean ${r.meanRelative.toExponential(3)}`);
}
