// `rankscope compress` for state-dict models (PyTorch checkpoints, safetensors): plan as for ONNX,
// then write a factors file (<layer>.lowrank_A/_B plus every untouched tensor, the plan in its
// metadata) instead of a rewritten graph. rankscope_torch.apply_factors loads it (docs/pytorch.md).
// Called from compress.ts, which parses the options; the shared pieces come in `shared` so the
// two files do not import each other.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { statSync } from 'node:fs';
import { RankscopeError } from '../core/errors';
import { parsePlan, type CompressRequest, type Plan } from '../core/compress';
import { planStateDict, writeFactorsFile } from '../core/compress/factorsFile';
import type { StateDictModel } from '../core/formats/stateDict';
import { writeFileAtomic } from '../core/fs/atomicWrite';
import { defaultSpectrumCacheDir } from '../core/linalg';
import type { CommandIO } from './command';
import { formatBytes } from '../core/format';

export interface StateDictCompressOptions {
  out?: string;
  dryRun: boolean;
  planFile?: string;
  savePlan?: string;
  noCache: boolean;
  restore?: string;
  check: number;
}

export async function compressStateDict(
  model: StateDictModel,
  options: StateDictCompressOptions,
  io: CommandIO,
  shared: { request: () => CompressRequest; planTable: (plan: Plan) => string[] },
): Promise<number> {
  const name = basename(model.summary.path);
  if (options.restore !== undefined) {
    throw new RankscopeError('BAD_ARGUMENT', `--restore applies to ONNX models; ${name} is a state dict.`, 'Load the original checkpoint instead: its dense weights are unchanged.');
  }
  if (options.check) {
    throw new RankscopeError('BAD_ARGUMENT', `--check runs the model in ONNX Runtime; ${name} is a state dict with no graph.`, 'Compare outputs in PyTorch after rankscope_torch.apply_factors (docs/pytorch.md).');
  }
  if (options.out && !/\.safetensors$/i.test(options.out)) {
    throw new RankscopeError('BAD_ARGUMENT', `The output ${options.out} must be a .safetensors file: compressing ${name} writes its factors, not a checkpoint.`, 'Use e.g. -o model.lowrank.safetensors.');
  }
  let plan: Plan;
  if (options.planFile !== undefined) {
    const text = await readFile(options.planFile, 'utf8').catch(() => {
      throw new RankscopeError('NOT_FOUND', `Plan file not found: ${options.planFile}`);
    });
    plan = parsePlan(text, options.planFile);
  } else {
    plan = await planStateDict(model, shared.request(), { signal: io.signal, cacheDir: options.noCache ? undefined : defaultSpectrumCacheDir() });
  }
  for (const line of shared.planTable(plan)) io.out(line);
  if (options.savePlan) {
    await writeFileAtomic(options.savePlan, JSON.stringify(plan, null, 2) + '\n', { inputs: [model.summary.path], signal: io.signal });
    io.out(`plan saved to ${options.savePlan}`);
  }
  if (options.dryRun) return 0;
  if (plan.totals.compressed === 0) throw new RankscopeError('BAD_ARGUMENT', 'No layer would be compressed; nothing written.', 'See the reasons in the table above.');
  const t0 = performance.now();
  const written = await writeFactorsFile(model, plan, options.out!, { signal: io.signal });
  const before = model.summary.fileSize;
  const after = statSync(written.path).size;
  io.out(`wrote ${written.path}: ${written.records.length} layers as factors (<layer>.lowrank_A / .lowrank_B), ${formatBytes(before)} → ${formatBytes(after)} ` +
    `(${before ? ((after / before) * 100).toFixed(1) : '–'} %) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  io.out('load it in PyTorch with rankscope_torch.apply_factors(model, path); `rankscope torch-path` prints the folder for PYTHONPATH');
  return 0;
}
