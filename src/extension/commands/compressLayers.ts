// Compress Layer… (tree context menu, on one or many layers) and Compress Layers… (palette: pick
// layers first). A QuickPick of policies — energy 90/95/99 %, rank…, rank ratio… — each showing
// the parameters after and the energy kept BEFORE the user picks; then the output name; then a new
// model is written and opened. Tests pass `{ layers, policy, output }` to skip every prompt.
import * as vscode from 'vscode';
import type { RankPolicy } from '../../core/compress/policy';
import { isCompressible, type Plan } from '../../core/compress/plan';
import { askOutputPath, outputPathFor, pickMethod, planFor, planSummary, writeAndOpen, type CompressMethod } from '../compress';
import { formatCount, formatShape } from '../../core/format';
import { quickPickText } from '../format';
import { withCancellableProgress } from '../progress';
import type { ModelSession } from '../session';
import { settings } from '../settings';
import type { RankscopeCommand, Services } from './command';
import { optionsArg, selectedLayers } from './layerArgs';

export interface CompressOptions {
  layers: string[];
  policy: RankPolicy;
  /** Output file; default: the next free `model.rankscope.onnx` (no prompt). */
  output: string;
  /** 'whitened' calibrates on rankscope.json's data first; default: asked when data is configured, else 'svd'. */
  method: CompressMethod;
}

async function run(s: Services, args: unknown[]): Promise<string | undefined> {
  const session = s.session;
  const model = session.requireModel();
  const options = optionsArg<CompressOptions>(args);
  let layers = selectedLayers(s, args);
  if (layers.length === 0) layers = await pickLayers(session) ?? [];
  if (layers.length === 0) return undefined;
  const policy = options.policy ?? await pickPolicy(session, layers);
  if (!policy) return undefined;
  const method = options.method ?? (options.policy ? 'svd' : await pickMethod(session));
  if (!method) return undefined;
  const output = options.output ?? (options.policy ? outputPathFor(session.path!) : await askOutputPath(session.path!));
  if (!output) return undefined;
  return withCancellableProgress(`Compressing ${layers.length === 1 ? layers[0] : `${layers.length} layers`} of ${model.summary.path.split(/[\\/]/).pop()}`, async (signal, progress) => {
    progress.report('planning');
    const plan = await planFor(session, { ...policy, layers }, signal);
    return writeAndOpen(session, plan, output, signal, method, (m) => progress.report(m));
  });
}

async function pickLayers(session: ModelSession): Promise<string[] | undefined> {
  const model = session.requireModel();
  const items = model.layers.filter(isCompressible).map((l) => ({
    label: quickPickText(l.name),
    description: `${formatShape(l.shape)} · ${formatCount(l.params)}${l.compressed ? ` · rank ${l.compressed.rank}` : ''}`,
    layer: l.name,
  }));
  const picked = await vscode.window.showQuickPick(items, { title: 'Compress Layers: choose layers', canPickMany: true, matchOnDescription: true });
  return picked?.map((p) => p.layer);
}

type PolicyItem = vscode.QuickPickItem & { policy?: RankPolicy; ask?: 'rank' | 'rankRatio' };

/** The policy QuickPick; plans for the fixed choices are computed up front so each item shows its result. */
async function pickPolicy(session: ModelSession, layers: string[]): Promise<RankPolicy | undefined> {
  const energies = [...new Set([0.9, 0.95, 0.99, settings().defaultEnergy])].sort((a, b) => a - b);
  const plans = await withCancellableProgress('Computing spectra', async (signal) => {
    await session.ensureSpectra(layers, signal);
    return Promise.all(energies.map((energy) => planFor(session, { energy, layers }, signal)));
  }, vscode.ProgressLocation.Window);
  const items: PolicyItem[] = energies.map((energy, i) => ({
    label: `energy ${+(energy * 100).toFixed(2)} %`,
    description: energy === settings().defaultEnergy ? '(default)' : undefined,
    detail: planSummary(plans[i]!),
    policy: { energy },
  }));
  items.push(
    { label: 'rank…', detail: 'Keep the same rank k in every selected layer', ask: 'rank' },
    { label: 'rank ratio…', detail: 'Keep a fraction of each layer\'s full rank min(out, in)', ask: 'rankRatio' },
  );
  const picked = await vscode.window.showQuickPick(items, {
    title: `Compress ${layers.length === 1 ? quickPickText(layers[0]!) : `${layers.length} layers`}`,
    placeHolder: 'Choose how much of each spectrum to keep',
    matchOnDetail: true,
  });
  if (!picked) return undefined;
  if (picked.policy) return picked.policy;
  return askNumber(session, layers, picked.ask!);
}

/** An input box that shows the resulting parameters and energy as the user types. */
async function askNumber(session: ModelSession, layers: string[], key: 'rank' | 'rankRatio'): Promise<RankPolicy | undefined> {
  const parse = (v: string): RankPolicy | string => {
    const x = Number(v.trim());
    if (key === 'rank') return Number.isInteger(x) && x >= 1 ? { rank: x } : 'Enter a whole number ≥ 1';
    return x > 0 && x <= 1 ? { rankRatio: x } : 'Enter a ratio in (0, 1], e.g. 0.25';
  };
  const describe = async (v: string): Promise<string | vscode.InputBoxValidationMessage | undefined> => {
    const policy = parse(v);
    if (typeof policy === 'string') return policy;
    let plan: Plan;
    try {
      plan = await planFor(session, { ...policy, layers });
    } catch (e) {
      return (e as Error).message;
    }
    return { message: planSummary(plan), severity: plan.totals.compressed ? vscode.InputBoxValidationSeverity.Info : vscode.InputBoxValidationSeverity.Warning };
  };
  const value = await vscode.window.showInputBox({
    title: key === 'rank' ? 'Rank k' : 'Rank ratio',
    prompt: key === 'rank' ? 'Singular triplets to keep per layer' : 'Fraction of min(out, in) to keep per layer',
    value: key === 'rank' ? '' : '0.25',
    validateInput: describe,
  });
  if (value === undefined) return undefined;
  const policy = parse(value);
  return typeof policy === 'string' ? undefined : policy;
}

export const compressLayer: RankscopeCommand = { id: 'rankscope.compressLayer', action: 'Compress layer', run: (s, ...args) => run(s, args) };
export const compressLayers: RankscopeCommand = { id: 'rankscope.compressLayers', action: 'Compress layers', run: (s, ...args) => run(s, args) };
