// The part of `rankscope finetune` for a PyTorch checkpoint (docs/pytorch.md): MODEL.pt with
// --factors, --factory, --factory-path, --factory-args and --distill. finetune.ts spreads these
// options into its own, and asks `moduleArgs` for the factory and factors once it knows MODEL is
// a state dict (isStateDictFile); the training options are the same for both kinds of model.
import { RankscopeError } from '../core/errors';
import { checkFactory, moduleResultFormat, type ModuleFactory } from '../worker/finetuneModule';

export const MODULE_OPTIONS = {
  factors: { type: 'string' }, factory: { type: 'string' }, 'factory-path': { type: 'string' }, 'factory-args': { type: 'string' },
  distill: { type: 'boolean' },
} as const;

export const MODULE_USAGE = `A PyTorch checkpoint (MODEL.pt/.pth/.bin/.safetensors, a state dict) trains as your own nn.Module
and writes the fine-tuned state dict of the factorized module (the next free MODEL.finetuned.pt):
  --factors FILE         the factors from \`rankscope compress MODEL.pt -o MODEL.lowrank.safetensors\`
  --factory MOD:FN       the function (or class) that builds the nn.Module, e.g. mypkg.models:build
  --factory-path DIR     the folder to import MOD from (default: the current folder)
  --factory-args JSON    keyword arguments for FN, e.g. '{"num_classes": 60}'
  --distill              distil from the dense model of the checkpoint (instead of --teacher)`;

interface ModuleValues {
  out?: string;
  factors?: string;
  factory?: string;
  'factory-path'?: string;
  'factory-args'?: string;
  distill?: boolean;
  teacher?: string;
}

/** Refuses the checkpoint-only options for an ONNX model. */
export function refuseModuleArgs(values: ModuleValues): void {
  const given = (['factors', 'factory', 'factory-path', 'factory-args', 'distill'] as const).filter((k) => values[k] !== undefined);
  if (given.length) {
    throw new RankscopeError('BAD_ARGUMENT', `${given.map((k) => `--${k}`).join(', ')} ${given.length > 1 ? 'are' : 'is'} for PyTorch checkpoints; this MODEL is ONNX.`,
      'To distil an ONNX model, give the original with --teacher ORIGINAL.onnx.');
  }
}

/** The factors file and the factory of a checkpoint run (every problem is a one-line error). */
export function moduleArgs(values: ModuleValues, model: string): { factors: string; factory: ModuleFactory } {
  if (values.teacher !== undefined) {
    throw new RankscopeError('BAD_ARGUMENT', `For a PyTorch checkpoint the teacher is the checkpoint's own dense model: use --distill instead of --teacher.`);
  }
  if (!values.factors) {
    throw new RankscopeError('BAD_ARGUMENT', `Fine-tuning ${model} needs --factors FILE: its low-rank factors.`, `Make them with: rankscope compress ${model} -o model.lowrank.safetensors`);
  }
  if (!values.factory) {
    throw new RankscopeError('BAD_ARGUMENT', `Fine-tuning ${model} needs --factory MOD:FN, the function that builds your nn.Module.`,
      'E.g. --factory mypkg.models:build --factory-path ./src');
  }
  let args: Record<string, unknown> | undefined;
  if (values['factory-args'] !== undefined) {
    try {
      args = JSON.parse(values['factory-args']) as Record<string, unknown>;
    } catch (e) {
      throw new RankscopeError('BAD_ARGUMENT', `--factory-args is not JSON (${(e as Error).message}).`, 'Give a JSON object, e.g. \'{"num_classes": 60}\'.');
    }
  }
  const factory: ModuleFactory = { factory: values.factory, path: values['factory-path'], args };
  checkFactory(factory); // here, before the interpreter search starts Python processes
  if (values.out !== undefined) moduleResultFormat(values.out);
  return { factors: values.factors, factory };
}
