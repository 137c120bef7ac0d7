// Compress Model to Budget…: remove a fraction of the factorizable parameters, spread over the
// layers by energy (greedy, energy kept per parameter) or uniformly. Each budget in the QuickPick
// shows its result before the pick. Tests pass `{ budget, allocation, output }`.
import * as vscode from 'vscode';
import type { Allocation } from '../../core/compress/budget';
import { withWhitenedSpectra } from '../../core/compress/apply';
import { isCompressible } from '../../core/compress/plan';
import { askOutputPath, onnxModel, outputPathFor, pickMethod, planFor, planSummary, whiteningFor, writeAndOpen, type CompressMethod } from '../compress';
import { withCancellableProgress } from '../progress';
import type { RankscopeCommand } from './command';
import { optionsArg } from './layerArgs';

interface BudgetOptions { budget: number; allocation: Allocation; output: string; method: CompressMethod }

export const compressModelToBudget: RankscopeCommand = {
  id: 'rankscope.compressModelToBudget',
  action: 'Compress model to budget',
  run: async (s, ...args) => {
    const session = s.session;
    session.requireModel();
    const options = optionsArg<BudgetOptions>(args);
    let budget = options.budget;
    let allocation: Allocation = options.allocation ?? 'energy';
    if (budget === undefined) {
      const picked = await pickBudget(s.session);
      if (!picked) return undefined;
      ({ budget, allocation } = picked);
    }
    const method = options.method ?? (options.budget !== undefined ? 'svd' : await pickMethod(session));
    if (!method) return undefined;
    const output = options.output ?? (options.budget !== undefined ? outputPathFor(session.path!) : await askOutputPath(session.path!));
    if (!output) return undefined;
    return withCancellableProgress(`Compressing to ${Math.round(budget * 100)} % fewer parameters`, async (signal, progress) => {
      if (method === 'svd') return writeAndOpen(session, await planFor(session, { budget, allocation }, signal), output, signal);
      // Whitened: calibrate first; an energy budget then spreads by output error (the 'whitened' allocation).
      const model = onnxModel(session.requireModel());
      const whitening = await whiteningFor(session, model.layers.filter(isCompressible).map((l) => l.name), signal, (m) => progress.report(m));
      const request = allocation === 'energy' ? await withWhitenedSpectra(model, { budget, allocation: 'whitened' }, whitening, { signal }) : { budget, allocation };
      return writeAndOpen(session, await planFor(session, request, signal), output, signal, whitening, (m) => progress.report(m));
    });
  },
};

async function pickBudget(session: import('../session').ModelSession): Promise<{ budget: number; allocation: Allocation } | undefined> {
  const budgets = [0.25, 0.5, 0.75];
  const allocations: Allocation[] = ['energy', 'uniform'];
  const plans = await withCancellableProgress('Computing spectra', async (signal) => {
    const out = [];
    for (const allocation of allocations) {
      for (const budget of budgets) out.push({ budget, allocation, plan: await planFor(session, { budget, allocation }, signal) });
    }
    return out;
  });
  const items: (vscode.QuickPickItem & { budget?: number; allocation?: Allocation })[] = plans.map((p) => ({
    label: `−${p.budget * 100} % parameters, ${p.allocation === 'energy' ? 'by energy' : 'uniform'}`,
    detail: planSummary(p.plan),
    budget: p.budget,
    allocation: p.allocation,
  }));
  items.push({ label: 'other budget…', detail: 'Type the fraction of factorizable parameters to remove' });
  const picked = await vscode.window.showQuickPick(items, { title: 'Compress Model to Budget', matchOnDetail: true });
  if (!picked) return undefined;
  if (picked.budget !== undefined) return { budget: picked.budget, allocation: picked.allocation! };
  const value = await vscode.window.showInputBox({
    title: 'Budget: fraction of factorizable parameters to remove',
    value: '0.5',
    validateInput: async (v) => {
      const x = Number(v);
      if (!(x > 0 && x < 1)) return 'Enter a fraction in (0, 1), e.g. 0.4';
      try {
        return { message: planSummary(await planFor(session, { budget: x, allocation: 'energy' })), severity: vscode.InputBoxValidationSeverity.Info };
      } catch (e) {
        return (e as Error).message;
      }
    },
  });
  return value === undefined ? undefined : { budget: Number(value), allocation: 'energy' };
}
