// `rankscope compress MODEL -o OUT [policy] [--layers …] [--plan PLAN.json] [--dry-run] …`:
// plan (or load a plan), print it as a table with totals, write the compressed model.
import { readFile, rename, writeFile } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { RankscopeError } from '../core/errors';
import { openOnnx } from '../core/formats/onnx';
import {
  compressToFile, parsePlan, planAndFactorize, planModel, recomposeLayers, refuseOverwrite, restoreOriginalLayers, type CompressRequest, type Plan,
} from '../core/compress';
import { checkOutputs } from '../core/compress/check';
import { defaultSpectrumCacheDir } from '../core/linalg';
import { parseOptions, type Command, type CommandIO } from './command';
import { formatBytes, formatCount } from './inspect';

const USAGE = `Usage: rankscope compress MODEL -o OUT [policy] [options]

  policy (one of; or --plan):
    --rank K           keep K singular triplets per layer
    --energy T         smallest rank keeping a share T of each layer's σ² (e.g. 0.9)
    --rank-ratio R     k = ⌈R·min(m,n)⌉
    --param-ratio B    each layer keeps ≤ B of its weight parameters
    --budget X         cut the selected layers' parameters by X (0.5 or 50%), ranks allocated
                       across layers by energy kept per parameter (--allocation uniform: same ratio)
  --layers L         layer names, comma separated, or a glob (encoder.*.fc1); default: all factorizable
  --plan FILE        apply a saved (possibly hand-edited) plan instead of a policy
  --save-plan FILE   write the plan JSON (docs/plan.md)
  --dry-run          print the plan, write nothing (no -o needed)
  --round-to [N]     round ranks up to a multiple of N (default 8)
  --force            factorize even where it saves no parameters
  --check N          run N random inputs through both models; print the relative output deviation
  --no-cache         recompute spectra instead of reading the spectrum cache
  --restore L        instead: put back the original weights of factorized layers L (names or glob),
                     read from the source model the compression recorded (its hash checked)
  --recompose L      instead: make factorized layers L dense again as A·B (keeps the compression
                     error; needs no source model)`;

export const compressCommand: Command = {
  name: 'compress',
  summary: 'Compress layers by low-rank SVD factorization; writes a new ONNX model.',
  usage: USAGE,
  async run(args, io) {
    // A bare --round-to means multiples of 8 (what GPUs' tensor cores like).
    const argv = args.flatMap((a, i) => (a === '--round-to' && !/^\d/.test(args[i + 1] ?? '') ? ['--round-to', '8'] : [a]));
    const { values, positionals } = parseOptions(argv, {
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
    if (out && resolve(out) === resolve(positionals[0])) {
      throw new RankscopeError('BAD_ARGUMENT', `The output ${out} is the input model; Rankscope never overwrites a model.`, 'Choose another -o path.');
    }
    const checkSamples = values.check === undefined ? 0 : integer('--check', values.check, 1);
    const model = await openOnnx(positionals[0], { signal: io.signal });

    if (values.restore !== undefined || values.recompose !== undefined) {
      if (values.restore !== undefined && values.recompose !== undefined) throw new RankscopeError('BAD_ARGUMENT', 'Give --restore or --recompose, not both.');
      const original = values.restore !== undefined;
      const flag = original ? '--restore' : '--recompose';
      const pattern = (original ? values.restore : values.recompose)!;
      if (!out) throw new RankscopeError('BAD_ARGUMENT', `${flag} needs -o OUT.`);
      const names = model.layers.filter((l) => l.compressed && matches(pattern, l.name)).map((l) => l.name);
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
    if (values.plan !== undefined) {
      if (policyGiven(values)) throw new RankscopeError('BAD_ARGUMENT', '--plan replaces the policy options; give one or the other.');
      const text = await readFile(values.plan, 'utf8').catch(() => {
        throw new RankscopeError('NOT_FOUND', `Plan file not found: ${values.plan}`);
      });
      plan = parsePlan(text, values.plan);
    } else {
      const planning = { signal: io.signal, cacheDir: values['no-cache'] ? undefined : defaultSpectrumCacheDir() };
      // Writing: the factors come from the same per-layer pass as the spectra (one reduction per layer).
      if (dryRun) plan = await planModel(model, requestFrom(values), planning);
      else ({ plan, factors } = await planAndFactorize(model, requestFrom(values), planning));
    }
    for (const line of planTable(plan)) io.out(line);

    if (values['save-plan']) {
      await writeAtomic(values['save-plan'], JSON.stringify(plan, null, 2) + '\n');
      io.out(`plan saved to ${values['save-plan']}`);
    }
    if (dryRun) return 0;
    if (plan.totals.compressed === 0) throw new RankscopeError('BAD_ARGUMENT', 'No layer would be compressed; nothing written.', 'See the reasons in the table above.');
    refuseOverwrite(model, out!);
    const t0 = performance.now();
    const written = await compressToFile(model, plan, out!, { signal: io.signal, factors });
    const before = model.summary.fileSize;
    const after = fileSize(written.path);
    io.out(`wrote ${written.path}: ${formatBytes(before)} → ${formatBytes(after)} (${percent(after, before)}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    if (checkSamples) await reportCheck(model, written.path, checkSamples, io);
    return 0;
  },
};

type Values = Record<string, string | boolean | undefined>;

function policyGiven(values: Values): boolean {
  return ['rank', 'energy', 'rank-ratio', 'param-ratio', 'budget'].some((k) => values[k] !== undefined);
}

function requestFrom(values: Values): CompressRequest {
  const chosen = ['rank', 'energy', 'rank-ratio', 'param-ratio', 'budget'].filter((k) => values[k] !== undefined);
  if (chosen.length !== 1) {
    throw new RankscopeError('BAD_ARGUMENT', chosen.length ? `Give one policy; got --${chosen.join(', --')}.` : 'Missing a policy.',
      'Use one of --rank K, --energy T, --rank-ratio R, --param-ratio B, --budget X, or --plan FILE.');
  }
  const layers = typeof values.layers === 'string' ? values.layers.split(',').map((s) => s.trim()).filter(Boolean) : undefined;
  const roundTo = values['round-to'] === undefined ? undefined : integer('--round-to', values['round-to'] as string, 1);
  const common = { ...(layers && { layers }), ...(roundTo && { roundTo }) };
  const text = values[chosen[0]] as string;
  switch (chosen[0]) {
    case 'rank': return { rank: integer('--rank', text, 1), force: values.force === true, ...common };
    case 'energy': return { energy: fraction('--energy', text), force: values.force === true, ...common };
    case 'rank-ratio': return { rankRatio: fraction('--rank-ratio', text), force: values.force === true, ...common };
    case 'param-ratio': return { paramRatio: fraction('--param-ratio', text), force: values.force === true, ...common };
    default: {
      const allocation = (values.allocation as string | undefined) ?? 'energy';
      if (allocation !== 'energy' && allocation !== 'uniform') throw new RankscopeError('BAD_ARGUMENT', `--allocation must be energy or uniform; got '${allocation}'.`);
      return { budget: fraction('--budget', text), allocation, ...common };
    }
  }
}

function integer(flag: string, text: string, min: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new RankscopeError('BAD_ARGUMENT', `${flag} must be an integer ≥ ${min}; got '${text}'.`);
  return n;
}

/** A number, or a percentage (`50%`). Range checks are the policies'. */
function fraction(flag: string, text: string): number {
  const pct = text.endsWith('%');
  const n = Number(pct ? text.slice(0, -1) : text);
  if (!Number.isFinite(n)) throw new RankscopeError('BAD_ARGUMENT', `${flag} must be a number (or a percentage); got '${text}'.`);
  return pct ? n / 100 : n;
}

function matches(pattern: string, name: string): boolean {
  return pattern.split(',').some((p) => new RegExp(`^${p.trim().replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`).test(name));
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
    formatCount(l.paramsBefore),
    l.skipped ? '–' : formatCount(l.paramsAfter),
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
    `layer parameters: ${formatCount(t.paramsBefore)} → ${formatCount(t.paramsAfter)} (${percent(t.paramsAfter, t.paramsBefore)})`,
    `model parameters: ${formatCount(t.modelParamsBefore)} → ${formatCount(t.modelParamsAfter)} (${percent(t.modelParamsAfter, t.modelParamsBefore)})`,
  ];
}

async function reportCheck(model: Parameters<typeof checkOutputs>[0], path: string, samples: number, io: CommandIO): Promise<void> {
  const r = await checkOutputs(model, path, samples, { signal: io.signal });
  io.out(`check: ${r.samples} random inputs, relative output deviation max ${r.maxRelative.toExponential(3)}, mean ${r.meanRelative.toExponential(3)}`);
}

function fileSize(path: string): number {
  const main = statSync(path).size;
  try {
    return main + statSync(`${path}.data`).size;
  } catch {
    return main;
  }
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = join(dirname(resolve(path)), `.${basename(path)}.${process.pid}.tmp`);
  await writeFile(tmp, text);
  await rename(tmp, path);
}
