// `rankscope inspect MODEL [--json]`: the layer inventory as a table, or as the stable JSON
// documented in docs/cli.md (schema "rankscope.inspect/1").
import { RankscopeError } from '../core/errors';
import { loadDataset, type Dataset } from '../core/eval/dataset';
import { measureMacs, type MacsResult } from '../core/eval/macs';
import { OrtRunner } from '../core/eval/runner';
import { resolveTask } from '../core/eval/task';
import { computeSpectra, defaultSpectrumCacheDir, type LayerSpectrum } from '../core/linalg';
import { formatBytes, formatCount, formatInteger } from '../core/format';
import { openModel } from '../core/formats';
import { OnnxModel } from '../core/formats/onnx';
import type { Layer, Model, ValueInfo } from '../core/model/types';
import type { Command } from './command';
import { cliOverrides, parseOptions, TASK_OPTIONS, taskFileFor } from './options';

export const INSPECT_SCHEMA = 'rankscope.inspect/1';

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'List every weight matrix of a model: shape, parameters, dtype, factorizable or why not.',
  usage: `Usage: rankscope inspect MODEL [--json] [--spectra] [--data FILE | --task FILE] [--input NAME=ARRAY] [--preset ntu|none]

  MODEL      an ONNX file (external data is read from its folder), a PyTorch checkpoint
             (.pt/.pth/.bin, torch.save's zip format) or a .safetensors file
  --json     print the stable JSON schema "${INSPECT_SCHEMA}" (docs/cli.md) instead of a table
  --spectra  add each layer's spectrum metrics (energy ranks, stable/effective rank, alpha; cached)
  --data, --task, --input, --preset
             data whose first sample fixes the input shapes the MACs are counted at (ONNX only;
             without it: the declared input shape with the batch at 1)`,
  async run(argv, io) {
    const { task, data, input, preset } = TASK_OPTIONS;
    const { values, positionals } = parseOptions(argv, { json: { type: 'boolean', default: false }, spectra: { type: 'boolean', default: false }, task, data, input, preset });
    if (positionals.length !== 1) {
      throw new RankscopeError('BAD_ARGUMENT', positionals.length ? 'Give exactly one model file.' : 'Missing MODEL.', 'Usage: rankscope inspect MODEL [--json]');
    }
    const model = await openModel(positionals[0], { signal: io.signal });
    const spectra = values.spectra
      ? new Map((await computeSpectra(model, { order: 'module', signal: io.signal, cacheDir: defaultSpectrumCacheDir() })).map((r) => [r.layer, r]))
      : undefined;
    const withData = values.task !== undefined || values.data !== undefined;
    const macs = await modelMacs(model, withData ? resolveTask(await taskFileFor(values.task), cliOverrides(values)).dataset : undefined, io.signal);
    if (values.json) io.out(JSON.stringify(inspectJson(model, spectra, macs), null, 2));
    else for (const line of inspectTable(model, spectra, macs)) io.out(line);
    return 0;
  },
};

/** MACs per sample from one ONNX Runtime run (eval/macs.ts); a state dict has no graph to run. */
async function modelMacs(model: Model, data: Parameters<typeof loadDataset>[0] | undefined, signal?: AbortSignal): Promise<MacsResult> {
  if (!(model instanceof OnnxModel)) return { ok: false, reason: 'a state dict has no graph to run, so the shapes its layers run at are unknown' };
  const runner = OrtRunner.create({ signal });
  let dataset: Dataset | undefined;
  try {
    if (data) {
      const probe = await runner.open(model.path);
      try {
        dataset = await loadDataset({ ...data, labels: null }, probe.inputs);
      } finally {
        await probe.close();
      }
    }
    return await measureMacs(model, { runner, dataset, signal });
  } finally {
    await dataset?.close();
    await runner.dispose();
  }
}

/** The documented JSON shape; add fields freely, never rename or remove one. */
export function inspectJson(model: Model, spectra?: Map<string, LayerSpectrum>, macs?: MacsResult) {
  const s = model.summary;
  const layerMacs = new Map(macs?.ok ? macs.layers.map((l) => [l.layer, l]) : []);
  return {
    schema: INSPECT_SCHEMA,
    model: {
      path: s.path,
      format: s.format,
      fileSize: s.fileSize,
      irVersion: s.irVersion,
      opsets: s.opsets,
      producer: s.producer,
      inputs: s.inputs,
      outputs: s.outputs,
      layerCount: model.layers.length,
      totalParams: s.totalParams,
      factorizableParams: s.factorizableParams,
      factorizableShare: s.totalParams ? s.factorizableParams / s.totalParams : 0,
      ...(macs && { macs: macs.ok ? macs.total : null, ...(macs.ok ? { macsInput: macs.input, macsNotes: macs.notes } : { macsReason: macs.reason }) }),
      metadata: s.metadata,
    },
    layers: model.layers.map((l) => ({
      name: l.name,
      op: l.op,
      shape: l.shape,
      params: l.params,
      dtype: l.dtype,
      factorizable: l.factorizable,
      ...(l.reason !== undefined && { reason: l.reason }),
      weight: l.weight,
      tensorShape: l.tensorShape,
      layout: l.layout,
      bias: l.bias ?? null,
      biasParams: l.biasParams,
      bytes: l.bytes,
      nodes: l.nodes,
      ...(l.via && { via: l.via }),
      ...(l.groups !== undefined && { groups: l.groups }),
      ...(l.kernel && { kernel: l.kernel }),
      ...(l.compressed && { compressed: l.compressed }),
      ...(spectra?.has(l.name) && { spectrum: spectra.get(l.name)!.metrics }),
      ...(macs?.ok && { macs: layerMacs.get(l.name)?.macs ?? null, ...(layerMacs.get(l.name)?.note && { macsNote: layerMacs.get(l.name)!.note }) }),
    })),
  };
}

export function inspectTable(model: Model, spectra?: Map<string, LayerSpectrum>, macs?: MacsResult): string[] {
  const layerMacs = new Map(macs?.ok ? macs.layers.map((l) => [l.layer, l.macs]) : []);
  const s = model.summary;
  const lines = [
    `${s.path}`,
    ...(s.format === 'onnx'
      ? [
        `  ${formatBytes(s.fileSize)}, ONNX IR ${s.irVersion}, opsets ${s.opsets.map((o) => `${o.domain} ${o.version}`).join(', ')}` +
          (s.producer.name ? `, produced by ${s.producer.name}${s.producer.version ? ` ${s.producer.version}` : ''}` : ''),
        `  inputs:  ${s.inputs.map(valueInfo).join(', ') || '(none)'}`,
        `  outputs: ${s.outputs.map(valueInfo).join(', ') || '(none)'}`,
      ]
      : [`  ${formatBytes(s.fileSize)}, ${s.format === 'pytorch' ? 'PyTorch checkpoint' : 'safetensors file'} (a state dict: no graph, layers found by parameter names)`]),
    '',
  ];
  const spectrumHeader = spectra ? ['r90', 'r95', 'r99', 'stable', 'eff.rank', 'alpha'] : [];
  const header = ['#', 'layer', 'op', 'out × in', 'dtype', 'params', 'MACs', 'bias', 'users', ...spectrumHeader, 'factorizable'];
  const rows = model.layers.map((l, i) => [
    String(i + 1), l.name, l.op + (l.groups && l.groups > 1 ? `/g${l.groups}` : ''), `${l.shape[0]} × ${l.shape[1]}`, l.dtype,
    formatInteger(l.params), macsCell(layerMacs.get(l.name)), l.biasParams ? formatInteger(l.biasParams) : '-', l.nodes.length ? String(l.nodes.length) : '-',
    ...(spectra ? spectrumCells(spectra.get(l.name)) : []), factorizableText(l),
  ]);
  const numeric = new Set([0, 5, 6, 7, 8, ...spectrumHeader.map((_, i) => 9 + i)]);
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const fmt = (r: string[]) => r.map((v, c) => (c === r.length - 1 ? v : numeric.has(c) ? v.padStart(widths[c]) : v.padEnd(widths[c]))).join('  ');
  lines.push(fmt(header), widths.map((w, c) => (c === widths.length - 1 ? '-'.repeat(12) : '-'.repeat(w))).join('  '));
  for (const r of rows) lines.push(fmt(r));
  const share = s.totalParams ? (100 * s.factorizableParams) / s.totalParams : 0;
  const nFact = model.layers.filter((l) => l.factorizable).length;
  lines.push('', `${model.layers.length} layers (${nFact} factorizable); ${formatInteger(s.totalParams)} parameters in total, ` +
    `${formatInteger(s.factorizableParams)} (${share.toFixed(1)} %) in factorizable layers.`);
  if (macs) lines.push(macsLine(macs));
  return lines;
}

const macsCell = (m: number | null | undefined) => (m === undefined || m === null ? '-' : formatCount(m));

/** The model's MACs per sample and what they were counted at, or why there are none. */
export function macsLine(macs: MacsResult): string {
  if (!macs.ok) return `MACs: not measured: ${macs.reason}.`;
  const at = Object.entries(macs.input.shapes).map(([k, d]) => `${k} [${d.join(', ')}]`).join(', ');
  return `${formatInteger(macs.total)} MACs per sample (${formatCount(macs.total)}; the weight layers' multiply-accumulates, counted at ${at} from the ${macs.input.source === 'data' ? 'data' : 'declared input shape'}${macs.batch > 1 ? `, divided by the batch of ${macs.batch}` : ''}).`
    + macs.notes.map((n) => ` ${n}`).join('');
}

/** --spectra columns: ranks for 90/95/99 % energy, stable rank, effective rank, alpha ('-' where none). */
function spectrumCells(s: LayerSpectrum | undefined): string[] {
  if (!s) return ['-', '-', '-', '-', '-', '-'];
  const m = s.metrics;
  return [String(m.energyRank['0.9']), String(m.energyRank['0.95']), String(m.energyRank['0.99']),
    m.stableRank.toFixed(1), m.effectiveRank.toFixed(1), m.alpha !== undefined ? m.alpha.toFixed(2) : '-'];
}

function factorizableText(l: Layer): string {
  if (l.compressed) return `compressed (rank ${l.compressed.rank})`;
  return l.factorizable ? 'yes' : `no: ${l.reason ?? ''}`;
}

function valueInfo(v: ValueInfo): string {
  return `${v.name} ${v.dtype}${v.shape ? `[${v.shape.map((d) => d ?? '?').join(', ')}]` : ''}`;
}
