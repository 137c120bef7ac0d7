// Fine-tuning the user's own PyTorch model (issue 17; docs/pytorch.md): the dense checkpoint
// (.pt/.safetensors state dict), the factors file `rankscope compress model.pt` wrote, and a
// factory (`package.module:function`) that builds the nn.Module. The checkpoint is read here, by
// the pickle reader that runs nothing, and handed to the worker as safetensors; the worker builds
// the module, loads the checkpoint, applies the factors (rankscope_torch.apply_factors), trains
// it in the same Trainer as an ONNX graph, writes the factorized module's state dict and reloads
// it into a freshly built module as the check. This side lands that file at the output: never
// over an input, by default the next free `<checkpoint>.finetuned.pt`.
import { existsSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { layerHash, parsePlan } from '../core/compress';
import { FACTORS_METADATA_KEY, PLAN_METADATA_KEY, type FactorRecord } from '../core/compress/factorsFile';
import { RankscopeError } from '../core/errors';
import { detectFormat, openModel } from '../core/formats';
import { writeSafetensors } from '../core/formats/safetensors';
import { StateDictModel } from '../core/formats/stateDict';
import { checkOutputPath, copyFileAtomic, ensureOutputFolder } from '../core/fs/atomicWrite';
import { nextFreeOutputPath } from '../core/outputPath';
import { checkProcesses } from './distributed';
import { jobFolders, type FinetuneHandlers, type FinetuneJob, type FinetuneResult } from './finetune';
import type { ModuleFinetuneConfig, ModuleSpec } from './protocol';
import { runWorker } from './runWorker';
import { checkTraining, resolveTraining } from './trainingOptions';

/** How the worker builds the user's nn.Module. */
export interface ModuleFactory {
  /** `package.module:function` (the function part may be dotted, e.g. `Net.build`). */
  factory: string;
  /** Folder to import it from (first on sys.path); default the current folder. */
  path?: string;
  /** Keyword arguments for the factory. */
  args?: Record<string, unknown>;
}

/** `verify` reloads the written file into a freshly built module and compares it with the worker's outputs. */
export interface FinetuneModuleRequest extends FinetuneJob {
  /** The dense checkpoint (.pt/.pth/.bin written by torch.save, or .safetensors). */
  checkpoint: string;
  /** The factors file from `rankscope compress CHECKPOINT -o model.lowrank.safetensors`. */
  factors: string;
  factory: ModuleFactory;
  /** Distil from the dense model of the checkpoint (kd defaults to KD_DEFAULTS). */
  distill?: boolean;
  /** The fine-tuned state dict: .pt/.pth/.bin (torch.save) or .safetensors; default the next free `<checkpoint>.finetuned.<ext>`. */
  out?: string;
}

const STATE_DICT_FORMATS = new Set(['pytorch', 'safetensors']);

/** True when `path` is a PyTorch checkpoint or safetensors file (by its first bytes), not ONNX. */
export async function isStateDictFile(path: string): Promise<boolean> {
  return STATE_DICT_FORMATS.has((await detectFormat(path)).id);
}

/** `model.pt` → the next free `model.finetuned.pt` (a .safetensors checkpoint keeps its extension). */
export function defaultModuleOutput(checkpoint: string): string {
  const ext = extname(checkpoint).toLowerCase();
  return nextFreeOutputPath(checkpoint, 'finetuned', ['.pt', '.pth', '.bin', '.safetensors'].includes(ext) ? ext : '.pt');
}

/** The result's format from its name: torch.save for .pt/.pth/.bin, else safetensors. */
export function moduleResultFormat(out: string): 'pt' | 'safetensors' {
  if (/\.safetensors$/i.test(out)) return 'safetensors';
  if (/\.(pt|pth|bin)$/i.test(out)) return 'pt';
  throw new RankscopeError('BAD_ARGUMENT', `The output ${basename(out)} must end in .pt, .pth, .bin or .safetensors: fine-tuning a PyTorch model writes its state dict.`,
    'Use e.g. -o model.finetuned.pt.');
}

const FACTORY_NAME = /^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$/;

/** The factory's form and folder, checked before anything starts. */
export function checkFactory(factory: ModuleFactory): void {
  if (!FACTORY_NAME.test(factory.factory)) {
    throw new RankscopeError('BAD_ARGUMENT', `--factory '${factory.factory}' is not of the form package.module:function.`,
      'E.g. --factory mypkg.models:build_model (with --factory-path the folder that holds mypkg/).');
  }
  if (factory.path !== undefined && !(existsSync(factory.path) && statSync(factory.path).isDirectory())) {
    throw new RankscopeError('NOT_FOUND', `The factory folder ${factory.path} does not exist (or is not a folder).`, 'Give --factory-path the folder to import the factory from.');
  }
  if (factory.args !== undefined && (typeof factory.args !== 'object' || factory.args === null || Array.isArray(factory.args))) {
    throw new RankscopeError('BAD_ARGUMENT', '--factory-args must be a JSON object of keyword arguments, e.g. \'{"num_classes": 60}\'.');
  }
}

async function openStateDict(path: string, what: string): Promise<StateDictModel> {
  const model = await openModel(path);
  if (!(model instanceof StateDictModel)) {
    throw new RankscopeError('BAD_ARGUMENT', `${basename(path)} is ONNX, not ${what}.`, 'Give the PyTorch checkpoint (.pt) and its factors file (.safetensors).');
  }
  return model;
}

/** The factors file's records, after checking it was made from this checkpoint (the plan's weight hashes). */
export async function readFactorsFor(path: string, checkpoint: StateDictModel): Promise<{ records: FactorRecord[]; metadata: Record<string, string> }> {
  if (!existsSync(path)) throw new RankscopeError('NOT_FOUND', `Factors file not found: ${path}`);
  const file = await openStateDict(path, 'a factors file');
  const { metadata } = file.summary;
  const name = basename(path);
  if (!metadata[FACTORS_METADATA_KEY]) {
    throw new RankscopeError('BAD_ARGUMENT', `${name} is not a Rankscope factors file (it has no '${FACTORS_METADATA_KEY}' metadata).`,
      `Make one with: rankscope compress ${basename(checkpoint.summary.path)} -o model.lowrank.safetensors`);
  }
  const records = JSON.parse(metadata[FACTORS_METADATA_KEY]) as FactorRecord[];
  const other = (why: string) => new RankscopeError('PLAN_MISMATCH', `The factors in ${name} were not made from ${basename(checkpoint.summary.path)}: ${why}.`,
    `Compress this checkpoint: rankscope compress ${basename(checkpoint.summary.path)} -o model.lowrank.safetensors`);
  for (const r of records) {
    const t = checkpoint.tensor(r.weight);
    if (!t) throw other(`its layer '${r.layer}' has weight '${r.weight}', which the checkpoint does not have`);
    if (t.shape.join() !== r.tensorShape.join()) throw other(`'${r.weight}' is [${t.shape.join(', ')}] in the checkpoint but [${r.tensorShape.join(', ')}] in the factors`);
  }
  if (metadata[PLAN_METADATA_KEY]) {
    const plan = parsePlan(metadata[PLAN_METADATA_KEY], name);
    for (const row of plan.layers.filter((l) => !l.skipped)) {
      const layer = checkpoint.layers.find((l) => l.name === row.layer);
      if (!layer || layerHash(checkpoint, layer) !== row.weightHash) throw other(`layer '${row.layer}' has different weights (hash mismatch)`);
    }
  }
  return { records, metadata };
}

/**
 * The checkpoint as safetensors for the worker (keys without the wrapper prefix): a plain
 * safetensors checkpoint as it is, anything else written to `<workDir>/dense.safetensors`.
 */
async function denseForWorker(checkpoint: StateDictModel, workDir: string, signal?: AbortSignal): Promise<string> {
  if (checkpoint.summary.format === 'safetensors' && !checkpoint.removedPrefix) return checkpoint.summary.path;
  const path = join(workDir, 'dense.safetensors');
  function* tensors() {
    for (const name of checkpoint.tensorNames()) {
      const t = checkpoint.tensor(name)!;
      yield [name, { dtype: t.dtype, shape: [...t.shape], bytes: () => t.bytes() }] as [string, { dtype: typeof t.dtype; shape: number[]; bytes: () => Uint8Array }];
    }
  }
  await writeSafetensors(path, tensors(), { 'rankscope.source': checkpoint.summary.path }, { signal, inputs: [checkpoint.summary.path] });
  return path;
}

export async function finetuneModule(req: FinetuneModuleRequest, handlers: FinetuneHandlers = {}): Promise<FinetuneResult> {
  const { signal } = handlers;
  const out = resolve(req.out ?? defaultModuleOutput(req.checkpoint));
  const format = moduleResultFormat(out);
  const distill = req.distill === true;
  const training = resolveTraining(req.training, distill);
  checkTraining(training, req.data);
  checkProcesses(req.worker ?? {}, training);
  checkFactory(req.factory);
  const inputs = [req.checkpoint, req.factors, req.data.path, req.data.valPath];
  checkOutputPath(out, { inputs }); // before the training, not after
  if (training.kd && !distill) throw new RankscopeError('BAD_ARGUMENT', 'Distillation from a PyTorch checkpoint needs --distill (the teacher is the checkpoint\'s dense model).');
  const { workDir, resume } = jobFolders(req, out);
  const checkpoint = await openStateDict(req.checkpoint, 'a PyTorch checkpoint');
  if (checkpoint.summary.metadata[FACTORS_METADATA_KEY]) {
    throw new RankscopeError('BAD_ARGUMENT', `${basename(req.checkpoint)} is a factors file, not the checkpoint.`,
      'Give the dense checkpoint as MODEL and this file as --factors.');
  }
  const factors = await readFactorsFor(req.factors, checkpoint);
  ensureOutputFolder(workDir); // only now: a refused request leaves nothing behind
  const stateDict = await denseForWorker(checkpoint, workDir, signal);
  const resultPath = join(workDir, `result${extname(out).toLowerCase()}`);
  await rm(resultPath, { force: true }); // a stale one from an earlier run must not land
  const module: ModuleSpec = {
    factory: req.factory.factory, factoryPath: resolve(req.factory.path ?? '.'), factoryArgs: req.factory.args ?? null,
    stateDict, factors: resolve(req.factors), teacher: distill, verify: req.verify !== false,
    result: {
      path: resultPath, format,
      // A safetensors result carries the factors' records, so apply_factors(model, result) loads it whole.
      metadata: format === 'safetensors' ? {
        format: 'pt', [PLAN_METADATA_KEY]: factors.metadata[PLAN_METADATA_KEY] ?? 'null', [FACTORS_METADATA_KEY]: factors.metadata[FACTORS_METADATA_KEY],
        'rankscope.source': resolve(req.checkpoint), 'rankscope.finetunedFrom': resolve(req.factors),
      } : null,
    },
  };
  const config: ModuleFinetuneConfig = { ...training, data: req.data, module, outDir: workDir, resume };
  const { done, hello } = await runWorker(config, req.worker, handlers);
  const result: FinetuneResult = {
    status: done.status, summary: done.summary, hello, checkpoint: done.checkpoint, workDir, summaryPath: done.summaryPath,
  };
  if (done.status !== 'completed') return result;
  if (!done.result) throw new RankscopeError('WORKER', 'The worker finished without writing the fine-tuned state dict.', 'Check that the Python worker is the one shipped with this Rankscope.');
  result.output = await copyFileAtomic(done.result.path, out, { inputs, signal });
  await rm(done.result.path, { force: true });
  if (done.result.verification) result.verification = done.result.verification;
  return result;
}
