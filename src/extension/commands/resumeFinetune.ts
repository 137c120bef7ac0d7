// Resume Fine-tuning…: continues a cancelled, failed or interrupted fine-tuning run from its
// checkpoint. The runs live in the extension's work folders (finetuneRoot); each keeps a run
// record (worker/finetune.ts run.json: the model, data, options and how far it got), so nothing is
// asked again: the open model's runs come first, a pick when there are several, and the run goes
// on where it stopped (same split, same batches) in the fine-tune view, like a fresh one.
// Tests pass `{ model }` (its most recent run) or `{ workDir }`, and `discovery`.
import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import * as vscode from 'vscode';
import { RankscopeError } from '../../core/errors';
import { findResumable, type FinetuneRequest, type Resumable } from '../../worker/finetune';
import type { DiscoveryOptions } from '../../worker/pythonDiscovery';
import { defaultFinetunedPath } from '../../worker/writeBack';
import { log } from '../log';
import { withCancellableProgress } from '../progress';
import { pythonInterpreter } from '../python';
import { finetuneProcesses } from '../settings';
import type { RankscopeCommand, Services } from './command';
import { finetuneRoot, runInView } from './finetune';
import { optionsArg } from './layerArgs';

export interface ResumeOptions {
  /** Resume this model's most recent run. */
  model: string;
  /** Resume the run of this work folder. */
  workDir: string;
  discovery: Pick<DiscoveryOptions, 'env' | 'systemPythons'>;
}

const progressText = (r: Resumable): string =>
  `${r.record.epochsDone} of ${r.record.epochs} epochs done${r.record.step ? ` + ${r.record.step} steps` : ''} · ${r.record.status === 'running' ? 'interrupted' : r.record.status}`;

async function pick(s: Services, given: Partial<ResumeOptions>): Promise<Resumable | undefined> {
  const all = findResumable(finetuneRoot(s));
  if (given.workDir) {
    const found = all.find((r) => resolve(r.workDir) === resolve(given.workDir!));
    if (!found) throw new RankscopeError('NOT_FOUND', `No fine-tuning run to resume in ${given.workDir}.`, 'It has no checkpoint, or its run completed.');
    return found;
  }
  const model = given.model ?? s.session.path;
  const mine = model ? all.filter((r) => resolve(r.record.model) === resolve(model)) : [];
  const candidates = given.model ? mine : [...mine, ...all.filter((r) => !mine.includes(r))];
  if (candidates.length === 0) {
    throw new RankscopeError('NOT_FOUND', `No fine-tuning run to resume${given.model ? ` for ${basename(given.model)}` : ''}.`,
      'A cancelled or failed run keeps a checkpoint to resume from; start one with "Rankscope: Fine-tune Compressed Model…".');
  }
  if (candidates.length === 1 || given.model) return candidates[0];
  const picked = await vscode.window.showQuickPick(candidates.map((r) => ({
    label: basename(r.record.model), description: `→ ${basename(r.record.out)}`, detail: `${progressText(r)} · ${new Date(r.record.updated).toLocaleString()}`, run: r,
  })), { title: 'Resume which fine-tuning run?' });
  return picked?.run;
}

export const resumeFinetune: RankscopeCommand = {
  id: 'rankscope.resumeFinetune',
  action: 'Resume fine-tuning',
  run: async (s, ...args) => {
    const given = optionsArg<ResumeOptions>(args);
    const python = await withCancellableProgress('Looking for Python with PyTorch', (signal) => pythonInterpreter({ ...given.discovery, signal }));
    const found = await pick(s, given);
    if (!found) return undefined;
    const { record, workDir } = found;
    if (!existsSync(record.model)) {
      throw new RankscopeError('NOT_FOUND', `The model this run fine-tunes is gone: ${record.model}.`, 'Start a new fine-tuning run.');
    }
    // The planned output was free when the run started; if something took the name since, the next free one.
    const out = existsSync(record.out) ? defaultFinetunedPath(record.model) : record.out;
    const req: FinetuneRequest = {
      model: record.model, out, teacher: record.teacher, data: record.data, training: record.training,
      workDir, resume: true, worker: { python: python.path, ...finetuneProcesses() }, // the number of processes may differ from the first run's
    };
    log().info(`Resuming fine-tuning of ${record.model} from ${found.checkpoint} (${progressText(found)}) with ${python.path} (${python.source})`);
    return runInView(s, req, python, record);
  },
};
