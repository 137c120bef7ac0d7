// Fine-tune Compressed Model…: first finds a Python with PyTorch (python.ts; before any prompt, so
// a missing torch is said at once), then asks for the model (default: the open one), the data
// (default: rankscope.json's), epochs, learning rate, device, distillation and the output file
// (the next free `model.finetuned.onnx`; an existing file is never replaced without asking); runs WORKER's `finetune`
// (export → Python/PyTorch worker → write-back → ONNX Runtime check) under a cancellable progress
// notification while the fine-tune view draws the curves; then offers to open the result.
// Tests pass `{ model, data, epochs, lr, device, distill, preset, out }` to skip the prompts
// (without `out`: the next free name) and `discovery` to steer the interpreter search.
// A PyTorch checkpoint (.pt/.safetensors) trains as the user's own nn.Module (finetuneModule.ts):
// then the factors file and the factory (`module:function` and its folder, remembered in the
// workspace state) are asked too, the teacher is the checkpoint itself, and the result is the
// next free `model.finetuned.pt`.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import * as vscode from 'vscode';
import { RankscopeError } from '../../core/errors';
import { finetune as runFinetune, type FinetuneHandlers, type FinetuneRequest } from '../../worker/finetune';
import { checkFactory, defaultModuleOutput, finetuneModule, isStateDictFile, moduleResultFormat, type ModuleFactory } from '../../worker/finetuneModule';
import { numberProblem, TRAINING_DEFAULTS } from '../../worker/trainingOptions';
import type { DiscoveryOptions } from '../../worker/pythonDiscovery';
import { defaultFinetunedPath } from '../../worker/writeBack';
import { outputPathProblem } from '../../core/fs/atomicWrite';
import { askOutputPath } from '../compress';
import { readWorkspaceTask, taskPath } from '../evalTask';
import { formatPercent } from '../../core/format';
import { isCancellation, log, noLinks } from '../log';
import { withCancellableProgress } from '../progress';
import { pythonInterpreter } from '../python';
import { settings } from '../settings';
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

/** The worker's checkpoints and exported graph: in the extension's storage, not the user's folder. */
function workDirFor(s: Services, out: string): string {
  const root = (s.context.storageUri ?? s.context.globalStorageUri).fsPath;
  return join(root, 'finetune', `${basename(out)}-${createHash('sha256').update(resolve(out)).digest('hex').slice(0, 12)}`);
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
    const req: FinetuneRequest = {
      model: o.model, out: o.out, worker: { python: python.path }, teacher, workDir: workDirFor(s, o.out),
      data: { path: o.data, preset: o.preset },
      training: { epochs: o.epochs, lr: o.lr, batchSize: o.batchSize, device: o.device === 'cuda' ? 'cuda:0' : o.device },
    };
    // A checkpoint trains as the user's nn.Module, its own dense model the teacher.
    const run = (handlers: FinetuneHandlers) => (o.factory && o.factors
      ? finetuneModule({
        checkpoint: o.model, factors: o.factors, factory: o.factory, distill: o.distill,
        data: req.data, out: req.out, worker: req.worker, workDir: req.workDir, training: req.training,
      }, handlers)
      : runFinetune(req, handlers));
    log().info(`Fine-tuning ${o.model} on ${o.data} with ${python.path} (${python.source}): ${o.epochs} epochs, lr ${o.lr}, device ${o.device}${teacher || (o.factory && o.distill) ? `, distilling from ${teacher ?? o.model}` : ''}${o.factory ? `, module ${o.factory.factory}` : ''}`);
    const view = s.finetune;
    const controller = new AbortController();
    view.cancelRun = () => controller.abort();
    let stepsPerEpoch = 0;
    try {
      const result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Fine-tuning ${basename(o.model)}`, cancellable: true },
        (progress, token) => {
          token.onCancellationRequested(() => controller.abort());
          let reported = 0;
          return run({
            signal: controller.signal,
            onStderr: (line) => log().debug(`[worker] ${line}`),
            onMessage: (m) => {
              switch (m.type) {
                case 'started':
                  stepsPerEpoch = m.stepsPerEpoch;
                  view.start({ model: basename(o.model), output: o.out, device: m.device, epochs: m.epochs, stepsPerEpoch: m.stepsPerEpoch });
                  log().info(`Worker started on ${m.device}: ${m.trainSamples} training / ${m.valSamples} validation samples, ${m.params.trainable} trainable parameters`);
                  break;
                case 'progress': {
                  view.step({ epoch: m.epoch, step: m.globalStep, loss: m.loss, lr: m.lr });
                  const total = Math.max(1, o.epochs * (stepsPerEpoch || m.stepsPerEpoch));
                  const pct = (100 * m.globalStep) / total;
                  progress.report({ message: `epoch ${m.epoch}/${o.epochs}, loss ${m.loss.toFixed(4)}`, increment: pct - reported });
                  reported = pct;
                  break;
                }
                case 'eval':
                  if (m.phase === 'epoch') view.epoch({ epoch: m.epoch, trainAccuracy: m.trainAccuracy, valAccuracy: m.valAccuracy, valLoss: m.valLoss });
                  else log().info(`Accuracy before fine-tuning: ${formatPercent(m.valAccuracy, 2)}`);
                  break;
                case 'log':
                  log()[m.level === 'warn' ? 'warn' : m.level === 'error' ? 'error' : m.level === 'debug' ? 'debug' : 'info'](`[worker] ${m.message}`);
                  break;
                default:
                  break;
              }
            },
          });
        },
      );
      const sum = result.summary;
      view.finish(result.status, {
        bestEpoch: sum.bestEpoch ?? 0, bestAccuracy: sum.accuracyAfter ?? 0,
        finalAccuracy: sum.epochs.at(-1)?.valAccuracy ?? sum.accuracyAfter ?? 0, seconds: sum.wallSeconds, output: result.output,
      });
      const line = `${sum.accuracyBefore !== null ? formatPercent(sum.accuracyBefore, 2) : '?'} → ${sum.accuracyAfter !== null ? formatPercent(sum.accuracyAfter, 2) : '?'} accuracy in ${sum.wallSeconds.toFixed(0)} s`;
      log().info(`Fine-tuning ${result.status}: ${line}${result.output ? `, wrote ${result.output}` : ''}${result.verification ? `, ONNX Runtime check max |Δ| ${result.verification.maxAbsDiff.toExponential(2)}` : ''}`);
      if (result.status === 'completed' && result.output) {
        const output = result.output;
        void vscode.window.showInformationMessage(noLinks(`Rankscope: fine-tuned ${basename(o.model)}: ${line}.`), 'Open Model').then((c) => {
          if (c) void vscode.commands.executeCommand('rankscope.openModel', output);
        });
      } else {
        void vscode.window.showInformationMessage(`Rankscope: fine-tuning cancelled; resume from ${result.checkpoint ?? 'the start'}.`);
      }
      return result;
    } catch (e) {
      view.finish(isCancellation(e) || controller.signal.aborted ? 'cancelled' : 'failed', undefined, (e as Error).message);
      throw e;
    }
  },
};
