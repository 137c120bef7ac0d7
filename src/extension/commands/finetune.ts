// Fine-tune Compressed Model…: first finds a Python with PyTorch (python.ts; before any prompt, so
// a missing torch is said at once), then asks for the model (default: the open one), the data
// (default: rankscope.json's), epochs, learning rate, device, distillation and the output file
// (the next free `model.finetuned.onnx`; an existing file is never replaced without asking); runs WORKER's `finetune`
// (export → Python/PyTorch worker → write-back → ONNX Runtime check) under a cancellable progress
// notification while the fine-tune view draws the curves; then offers to open the result.
// `runInView` is that run, shared with Resume Fine-tuning…: the view is cleared when the run
// starts; progress (toast, view, log) follows the worker's epoch convention as sent; every figure
// says its split (validation picks the best epoch, test is scored once with the best weights); a
// cancelled or failed run shows what was measured and offers to resume from its checkpoint.
// Tests pass `{ model, data, epochs, lr, device, distill, preset, out }` to skip the prompts
// (without `out`: the next free name) and `discovery` to steer the interpreter search.
// A PyTorch checkpoint (.pt/.safetensors) trains as the user's own nn.Module (finetuneModule.ts):
// then the factors file and the factory (`module:function` and its folder, remembered in the
// workspace state) are asked too, the teacher is the checkpoint itself, and the result is the
// next free `model.finetuned.pt`.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import * as vscode from 'vscode';
import { RankscopeError } from '../../core/errors';
import { formatEpochProgress, formatPercent } from '../../core/format';
import { CHECKPOINT, finetune as runFinetune, type FinetuneHandlers, type FinetuneRequest, type FinetuneResult, type RunRecord } from '../../worker/finetune';
import { checkFactory, defaultModuleOutput, finetuneModule, isStateDictFile, moduleResultFormat, type ModuleFactory } from '../../worker/finetuneModule';
import { describeProcesses, usesTorchrun } from '../../worker/distributed';
import type { FinetuneSummary as WorkerSummary, WorkerMessage } from '../../worker/protocol';
import type { DiscoveryOptions } from '../../worker/pythonDiscovery';
import { describeTest, describeValidation } from '../../worker/splits';
import { numberProblem, resolveTraining, TRAINING_DEFAULTS } from '../../worker/trainingOptions';
import { defaultFinetunedPath } from '../../worker/writeBack';
import { outputPathProblem } from '../../core/fs/atomicWrite';
import type { EpochPoint, FinetuneRun, FinetuneSummary } from '../../../webview/finetune/protocol';
import { askOutputPath } from '../compress';
import { readWorkspaceTask, taskPath } from '../evalTask';
import { isCancellation, log, noLinks } from '../log';
import { withCancellableProgress } from '../progress';
import { pythonInterpreter, type ChosenPython } from '../python';
import { finetuneProcesses, settings } from '../settings';
import type { RankscopeCommand, Services } from './command';
import { optionsArg } from './layerArgs';

export interface FinetuneOptions {
  model: string;
  data: string;
  preset: 'ntu' | null;
  epochs: number;
  lr: number;
  batchSize: number;
  device: string;
  /** Distil from the uncompressed original (the model's recorded source file). */
  distill: boolean;
  out: string;
  /** A PyTorch checkpoint: its factors file and the factory that builds the nn.Module. */
  factors?: string;
  factory?: ModuleFactory;
  /** For tests: the environment the interpreter search reads (PATH, VIRTUAL_ENV…) and the system Pythons. */
  discovery: Pick<DiscoveryOptions, 'env' | 'systemPythons'>;
}

async function ask(s: Services, given: Partial<FinetuneOptions>): Promise<Omit<FinetuneOptions, 'discovery'> | undefined> {
  const scripted = Object.keys(given).length > 0;
  let model = given.model ?? s.session.path;
  const opened = s.session.model;
  if (!model || (!given.model && !(opened?.layers.some((l) => l.compressed) || (opened && opened.summary.format !== 'onnx')))) {
    const picked = await vscode.window.showOpenDialog({
      title: 'Compressed model (or PyTorch checkpoint) to fine-tune', openLabel: 'Fine-tune',
      filters: { 'ONNX models': ['onnx'], 'PyTorch checkpoints': ['pt', 'pth', 'bin', 'safetensors'] },
    });
    model = picked?.[0]?.fsPath;
  }
  if (!model) return undefined;
  const module = (await isStateDictFile(model)) ? await askModule(s, model, given) : undefined;
  if (module === null) return undefined;
  const task = await readWorkspaceTask(model);
  let data = given.data ?? (task?.task.data ? taskPath(task.path, task.task.data) : undefined);
  if (!data) {
    const picked = await vscode.window.showOpenDialog({ title: 'Training data (.npz with x_train, y_train, x_test, y_test)', filters: { 'NumPy archives': ['npz'] }, openLabel: 'Use Data' });
    data = picked?.[0]?.fsPath;
  }
  if (!data) return undefined;
  // Prefilled with the shared defaults and checked by the same rules as the CLI's options.
  const number = async (title: string, option: 'epochs' | 'lr', value: number) => {
    const v = await vscode.window.showInputBox({ title, value: String(value), validateInput: (t) => (t.trim() === '' ? 'Enter a number' : numberProblem(option, Number(t))) });
    return v === undefined ? undefined : Number(v);
  };
  const epochs = given.epochs ?? await number('Epochs', 'epochs', TRAINING_DEFAULTS.epochs);
  if (epochs === undefined) return undefined;
  const lr = given.lr ?? await number('Learning rate', 'lr', TRAINING_DEFAULTS.lr);
  if (lr === undefined) return undefined;
  let device = given.device;
  if (!device) {
    const configured = settings().device;
    const devices = [configured, ...['auto', 'cuda', 'cpu', 'mps'].filter((d) => d !== configured)];
    const picked = await vscode.window.showQuickPick(devices.map((d) => ({ label: d, description: d === configured ? '(rankscope.device)' : undefined })), { title: 'Device' });
    device = picked?.label;
  }
  if (!device) return undefined;
  let distill = given.distill;
  if (distill === undefined) {
    const picked = await vscode.window.showQuickPick([
      { label: 'Distil from the original', detail: 'Knowledge distillation from the uncompressed model (slower, usually better)', value: true },
      { label: 'Labels only', detail: 'Plain cross-entropy on the training labels', value: false },
    ], { title: 'Distillation' });
    distill = picked?.value;
  }
  if (distill === undefined) return undefined;
  const preset = given.preset !== undefined ? given.preset : task?.task.preset === 'ntu' ? 'ntu' : null;
  const out = given.out !== undefined ? await confirmReplace(given.out)
    : module ? (scripted ? defaultModuleOutput(model) : await askModuleOutput(model, [module.factors]))
      : scripted ? defaultFinetunedPath(model) : await askOutputPath(model, 'finetuned', 'Write the fine-tuned model to');
  if (!out) return undefined;
  return { model, data, preset, epochs, lr, device, distill, batchSize: given.batchSize ?? TRAINING_DEFAULTS.batchSize, out, ...module };
}

const FACTORY_STATE = 'rankscope.finetune.factory';

/** The factors file (default the checkpoint's `.lowrank.safetensors` sibling) and the factory, remembered per workspace; null when dismissed. */
async function askModule(s: Services, checkpoint: string, given: Partial<FinetuneOptions>): Promise<{ factors: string; factory: ModuleFactory } | null> {
  let factors = given.factors;
  if (!factors) {
    const sibling = join(dirname(checkpoint), `${basename(checkpoint).replace(/\.(pt|pth|bin|safetensors)$/i, '')}.lowrank.safetensors`);
    const picked = existsSync(sibling) ? [vscode.Uri.file(sibling)] : await vscode.window.showOpenDialog({
      title: `Factors of ${basename(checkpoint)} (from rankscope compress … -o model.lowrank.safetensors)`, filters: { Factors: ['safetensors'] }, openLabel: 'Use Factors',
    });
    factors = picked?.[0]?.fsPath;
  }
  if (!factors) return null;
  let factory = given.factory;
  if (!factory) {
    const remembered = s.context.workspaceState.get<ModuleFactory>(FACTORY_STATE);
    const name = await vscode.window.showInputBox({
      title: 'Factory that builds your nn.Module (package.module:function)', value: remembered?.factory ?? '', placeHolder: 'mypkg.models:build',
      validateInput: (v) => problem(() => checkFactory({ factory: v.trim() })),
    });
    if (!name) return null;
    const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? resolve(checkpoint, '..');
    const path = await vscode.window.showInputBox({
      title: `Folder to import ${name.split(':')[0]} from`, value: remembered?.path ?? root,
      validateInput: (v) => problem(() => checkFactory({ factory: name.trim(), path: v.trim() })),
    });
    if (!path) return null;
    factory = { factory: name.trim(), path: path.trim(), ...(remembered?.factory === name.trim() && remembered.args ? { args: remembered.args } : {}) };
  }
  await s.context.workspaceState.update(FACTORY_STATE, factory); // the next Fine-tune proposes it
  return { factors, factory };
}

/** The message of the error `check` throws, or undefined (for input-box validation). */
function problem(check: () => void): string | undefined {
  try {
    check();
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

async function askModuleOutput(checkpoint: string, inputs: string[]): Promise<string | undefined> {
  const value = await vscode.window.showInputBox({
    title: 'Write the fine-tuned state dict to', value: defaultModuleOutput(checkpoint),
    validateInput: (v) => problem(() => moduleResultFormat(v)) ?? outputPathProblem(v, { inputs: [checkpoint, ...inputs] })
      ?? (existsSync(v) ? 'This file exists; Rankscope does not overwrite files. Choose another name.' : undefined),
  });
  return value?.trim() || undefined;
}

/** `out` when it is free; when it exists, only after the user said to replace it. */
async function confirmReplace(out: string): Promise<string | undefined> {
  if (!existsSync(out)) return out;
  const choice = await vscode.window.showWarningMessage(`${basename(out)} exists. Replace it with the new fine-tuned model?`, { modal: true }, 'Replace');
  return choice === 'Replace' ? out : undefined;
}

/** Where the extension keeps fine-tuning work folders: its storage, not the user's folder. */
export function finetuneRoot(s: Services): string {
  return join((s.context.storageUri ?? s.context.globalStorageUri).fsPath, 'finetune');
}

/** The worker's checkpoints and exported graph for the run writing `out` (one folder per output). */
function workDirFor(s: Services, out: string): string {
  return join(finetuneRoot(s), `${basename(out)}-${createHash('sha256').update(resolve(out)).digest('hex').slice(0, 12)}`);
}

const pct = (x: number | null | undefined): string => (typeof x === 'number' ? formatPercent(x, 2) : '—');

/** The figures a run showed, kept from its events: what a failed run can still say. */
class Measured {
  epochs: EpochPoint[] = [];
  best: { epoch: number; accuracy: number } | null = null;
  readonly t0 = Date.now();

  add(point: EpochPoint, best: boolean): void {
    this.epochs.push(point);
    if (best) this.best = { epoch: point.epoch, accuracy: point.valAccuracy };
  }

  summary(testNote: string, checkpoint?: string): FinetuneSummary {
    const last = this.epochs.filter((e) => e.epoch > 0).at(-1);
    return {
      bestEpoch: this.best?.epoch ?? null, bestAccuracy: this.best?.accuracy ?? null, finalAccuracy: last?.valAccuracy ?? null,
      testAccuracy: null, testNote, seconds: (Date.now() - this.t0) / 1000, checkpoint,
    };
  }
}

/** The view's summary from the worker's: each figure from its split; a dash's reason when missing. */
function viewSummary(sum: WorkerSummary, result: FinetuneResult): FinetuneSummary {
  const testNote = 'missing' in sum.splits.test ? sum.splits.test.missing
    : sum.status === 'cancelled' ? 'the run was cancelled; test is scored once, when it completes' : undefined;
  return {
    bestEpoch: sum.bestEpoch, bestAccuracy: sum.valAccuracyBest, finalAccuracy: sum.epochs.at(-1)?.valAccuracy ?? null,
    testAccuracy: sum.testAccuracy, testNote, seconds: sum.wallSeconds, output: result.output,
    checkpoint: result.status === 'cancelled' ? result.checkpoint ?? undefined : undefined,
  };
}

/** The worker's summary.json in `workDir` (the last run's), if readable. */
function readSummary(workDir: string): WorkerSummary | undefined {
  try {
    return JSON.parse(readFileSync(join(workDir, 'summary.json'), 'utf8')) as WorkerSummary;
  } catch {
    return undefined;
  }
}

/** "validation 35.00 % → 88.00 % (epoch 2); test 86.40 % with the best weights". */
function outcomeLine(sum: WorkerSummary): string {
  const best = sum.bestEpoch === 0 ? 'before fine-tuning: no epoch beat it' : `epoch ${sum.bestEpoch}`;
  const test = sum.testAccuracy !== null ? `test ${pct(sum.testAccuracy)} with the best weights`
    : `no test figure (${'missing' in sum.splits.test ? sum.splits.test.missing : 'not measured'})`;
  return `validation ${pct(sum.valAccuracyBefore)} → ${pct(sum.valAccuracyBest)} (${best}); ${test}`;
}

/**
 * Runs `req` under a cancellable notification with the fine-tune view: cleared at once, then the
 * worker's progress as sent. Resolves with the result (completed or cancelled); a failure shows
 * in the view (with what was measured) and is thrown for the error notification.
 */
/** `launch` runs the job (default: the ONNX graph's finetune; a checkpoint passes finetuneModule). */
export async function runInView(
  s: Services, req: FinetuneRequest, python: ChosenPython, resumed?: RunRecord,
  launch: (handlers: FinetuneHandlers) => Promise<FinetuneResult> = (handlers) => runFinetune(req, handlers),
): Promise<FinetuneResult> {
  const view = s.finetune;
  const workDir = req.workDir!;
  const epochs = resolveTraining(req.training).epochs;
  const run: FinetuneRun = {
    model: basename(req.model), output: req.out!, epochs,
    resumed: resumed ? `resuming: ${resumed.epochsDone} of ${resumed.epochs} epochs and ${resumed.step} steps were done` : undefined,
  };
  view.start(run);
  const controller = new AbortController();
  view.cancelRun = () => controller.abort();
  const measured = new Measured();
  const resume = (): void => { void vscode.commands.executeCommand('rankscope.resumeFinetune', { workDir }); };
  if (resumed) {
    // The curve so far, from the earlier run's summary: the worker sends only what it measures now.
    const earlier = readSummary(workDir);
    if (earlier?.valAccuracyBefore != null) {
      const before = { epoch: 0, valAccuracy: earlier.valAccuracyBefore, valLoss: earlier.valLossBefore ?? undefined };
      measured.add(before, earlier.bestEpoch === 0);
      view.epoch(before);
    }
    for (const e of earlier?.epochs ?? []) {
      const point = { epoch: e.epoch, trainAccuracy: e.trainAccuracy, valAccuracy: e.valAccuracy, valLoss: e.valLoss };
      measured.add(point, earlier!.bestEpoch === e.epoch);
      view.epoch(point);
    }
  }
  try {
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Fine-tuning ${basename(req.model)}`, cancellable: true },
      (progress, token) => {
        token.onCancellationRequested(() => controller.abort());
        let reported = 0;
        let stepsPerEpoch = 0;
        const onMessage = (m: WorkerMessage): void => {
          switch (m.type) {
            case 'started': {
              stepsPerEpoch = m.stepsPerEpoch;
              const validation = describeValidation(m.splits.validation);
              const test = describeTest(m.splits.test);
              Object.assign(run, { device: `${m.device}${describeProcesses(m.processes)}`, stepsPerEpoch: m.stepsPerEpoch, validation, test });
              view.describe({ ...run });
              log().info(`Worker started on ${m.device}: ${m.trainSamples} training / ${m.valSamples} validation${m.testSamples !== null ? ` / ${m.testSamples} test` : ''} samples, ${m.params.trainable} trainable parameters`);
              log().info(`Splits: ${validation}; ${test}`);
              if (m.splits.validation.source === 'held-out' && m.splits.validation.note) log().warn(m.splits.validation.note);
              break;
            }
            case 'progress': {
              view.step({ epoch: m.epoch, step: m.globalStep, loss: m.loss, lr: m.lr });
              const pctDone = (100 * m.globalStep) / Math.max(1, epochs * (stepsPerEpoch || m.stepsPerEpoch));
              progress.report({ message: `${formatEpochProgress(m.epoch, epochs)}, loss ${m.loss.toFixed(4)}`, increment: pctDone - reported });
              reported = pctDone;
              break;
            }
            case 'eval':
              if (m.phase === 'before') {
                measured.add({ epoch: 0, valAccuracy: m.valAccuracy, valLoss: m.valLoss }, true);
                view.epoch({ epoch: 0, valAccuracy: m.valAccuracy, valLoss: m.valLoss });
                log().info(`Validation accuracy before fine-tuning: ${pct(m.valAccuracy)}`);
              } else if (m.phase === 'epoch') {
                const point = { epoch: m.epoch, trainAccuracy: m.trainAccuracy, valAccuracy: m.valAccuracy, valLoss: m.valLoss };
                measured.add(point, m.best);
                view.epoch(point);
                log().info(`Epoch ${m.epoch} / ${epochs}: train loss ${m.trainLoss.toFixed(4)}, validation accuracy ${pct(m.valAccuracy)}${m.best ? ' (best so far)' : ''}`);
              } else {
                log().info(`Test accuracy with the best weights (${m.epoch === 0 ? 'before fine-tuning' : `epoch ${m.epoch}`}): ${pct(m.testAccuracy)} on ${m.samples} samples`);
              }
              break;
            case 'log':
              log()[m.level === 'warn' ? 'warn' : m.level === 'error' ? 'error' : m.level === 'debug' ? 'debug' : 'info'](`[worker] ${m.message}`);
              break;
            default:
              break;
          }
        };
        return launch({ signal: controller.signal, onStderr: (line) => log().debug(`[worker] ${line}`), onMessage });
      },
    );
    const sum = result.summary;
    if (result.status === 'cancelled' && result.checkpoint) view.resumeRun = resume;
    view.finish(result.status, viewSummary(sum, result));
    const line = outcomeLine(sum);
    log().info(`Fine-tuning ${result.status}: ${line}; ${sum.wallSeconds.toFixed(0)} s${result.output ? `, wrote ${result.output}` : ''}${result.verification ? `, ONNX Runtime check max |Δ| ${result.verification.maxAbsDiff.toExponential(2)}` : ''}`);
    if (result.status === 'completed' && result.output) {
      const output = result.output;
      void vscode.window.showInformationMessage(noLinks(`Rankscope: fine-tuned ${basename(req.model)}: ${line}, in ${sum.wallSeconds.toFixed(0)} s.`), 'Open Model').then((c) => {
        if (c) void vscode.commands.executeCommand('rankscope.openModel', output);
      });
    } else {
      const best = sum.valAccuracyBest !== null ? `; best validation accuracy so far ${pct(sum.valAccuracyBest)}` : '';
      void vscode.window.showInformationMessage(
        noLinks(`Rankscope: fine-tuning cancelled with ${sum.epochs.length} of ${epochs} epochs done${best}.`),
        ...(result.checkpoint ? ['Resume'] : []),
      ).then((c) => { if (c === 'Resume') resume(); });
    }
    return result;
  } catch (e) {
    const cancelled = isCancellation(e) || controller.signal.aborted;
    const checkpoint = existsSync(join(workDir, CHECKPOINT)) ? join(workDir, CHECKPOINT) : undefined;
    if (checkpoint) view.resumeRun = resume;
    view.finish(cancelled ? 'cancelled' : 'failed', measured.summary(cancelled ? 'the run was cancelled' : 'the run failed', checkpoint), cancelled ? undefined : (e as Error).message);
    throw e;
  } finally {
    view.cancelRun = undefined;
  }
}

export const finetune: RankscopeCommand = {
  id: 'rankscope.finetune',
  action: 'Fine-tune',
  run: async (s, ...args) => {
    const given = optionsArg<FinetuneOptions>(args);
    // The interpreter first: no prompt is worth answering when no Python has torch.
    const { discovery, ...rest } = given;
    const python = await withCancellableProgress('Looking for Python with PyTorch', (signal) => pythonInterpreter({ ...discovery, signal }));
    const o = await ask(s, rest);
    if (!o) return undefined;
    let teacher: string | undefined;
    if (o.distill && !o.factory) {
      const opened = s.session.path === o.model ? s.session.model : undefined;
      teacher = opened?.layers.find((l) => l.compressed?.sourceFile)?.compressed?.sourceFile;
      if (!teacher) throw new RankscopeError('BAD_ARGUMENT', `${basename(o.model)} does not record its original model, so there is no teacher to distil from.`, 'Fine-tune with labels only.');
    }
    // Distillation and every option not asked for take the shared defaults (trainingOptions.ts).
    const processes = finetuneProcesses();
    const req: FinetuneRequest = {
      model: o.model, out: o.out, worker: { python: python.path, ...processes }, teacher, workDir: workDirFor(s, o.out),
      data: { path: o.data, preset: o.preset },
      // Several processes take one GPU each (cuda:LOCAL_RANK); one takes the first.
      training: { epochs: o.epochs, lr: o.lr, batchSize: o.batchSize, device: o.device === 'cuda' && !usesTorchrun(processes) ? 'cuda:0' : o.device },
    };
    // A checkpoint trains as the user's nn.Module, its own dense model the teacher.
    const launch = o.factory && o.factors
      ? (handlers: FinetuneHandlers) => finetuneModule({
        checkpoint: o.model, factors: o.factors!, factory: o.factory!, distill: o.distill,
        data: req.data, out: req.out, worker: req.worker, workDir: req.workDir, training: req.training,
      }, handlers)
      : undefined;
    log().info(`Fine-tuning ${o.model} on ${o.data} with ${python.path} (${python.source}): ${o.epochs} epochs, lr ${o.lr}, device ${o.device}${teacher || (o.factory && o.distill) ? `, distilling from ${teacher ?? o.model}` : ''}${o.factory ? `, module ${o.factory.factory}` : ''}`);
    return runInView(s, req, python, undefined, launch);
  },
};
