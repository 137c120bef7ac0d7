// `rankscope inspect MODEL [--json]`: the layer inventory as a table, or as the stable JSON
// documented in docs/cli.md (schema "rankscope.inspect/1").
import { RankscopeError } from '../core/errors';
import { computeSpectra, defaultSpectrumCacheDir, type LayerSpectrum } from '../core/linalg';
import { formatBytes, formatInteger } from '../core/format';
import { openModel } from '../core/formats';
import type { Layer, Model, ValueInfo } from '../core/model/types';
import type { Command } from './command';
import { parseOptions } from './options';

export const INSPECT_SCHEMA = 'rankscope.inspect/1';

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'List every weight matrix of a model: shape, parameters, dtype, factorizable or why not.',
  usage: `Usage: rankscope inspect MODEL [--json] [--spectra]

  MODEL      an ONNX file (external data is read from its folder), a PyTorch checkpoint
             (.pt/.pth/.bin, torch.save's zip format) or a .safetensors file
  --json     print the stable JSON schema "${INSPECT_SCHEMA}" (docs/cli.md) instead of a table
  --spectra  add each layer's spectrum metrics (energy ranks, stable/effective rank, alpha; cached)`,
  async run(argv, io) {
    const { values, positionals } = parseOptions(argv, { json: { type: 'boolean', default: false }, spectra: { type: 'boolean', default: false } });
    if (positionals.length !== 1) {
      throw new RankscopeError('BAD_ARGUMENT', positionals.length ? 'Give exactly one model file.' : 'Missing MODEL.', 'Usage: rankscope inspect MODEL [--json]');
    }
    const model = await openModel(positionals[0], { signal: io.signal });
    const spectra = values.spectra
      ? new Map((await computeSpectra(model, { order: 'module', signal: io.signal, cacheDir: defaultSpectrumCacheDir() })).map((r) => [r.layer, r]))
      : undefined;
    if (values.json) io.out(JSON.stringify(inspectJson(model, spectra), null, 2));
    else for (const line of inspectTable(model, spectra)) io.out(line);
    return 0;
  },
};

/** The documented JSON shape; add fields freely, never rename or remove one. */
export function inspectJson(model: Model, spectra?: Map<string, LayerSpectrum>) {
  const s = model.summary;
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
    })),
  };
}

export function inspectTable(model: Model, spectra?: Map<string, LayerSpectrum>): string[] {
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
  const header = ['#', 'layer', 'op', 'out × in', 'dtype', 'params', 'bias', 'users', ...spectrumHeader, 'factorizable'];
  const rows = model.layers.map((l, i) => [
    String(i + 1), l.name, l.op + (l.groups && l.groups > 1 ? `/g${l.groups}` : ''), `${l.shape[0]} × ${l.shape[1]}`, l.dtype,
    formatInteger(l.params), l.biasParams ? formatInteger(l.biasParams) : '-', l.nodes.length ? String(l.nodes.length) : '-',
    ...(spectra ? spectrumCells(spectra.get(l.name)) : []), factorizableText(l),
  ]);
  const numeric = new Set([0, 5, 6, 7, ...spectrumHeader.map((_, i) => 8 + i)]);
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const fmt = (r: string[]) => r.map((v, c) => (c === r.length - 1 ? v : numeric.has(c) ? v.padStart(widths[c]) : v.padEnd(widths[c]))).join('  ');
  lines.push(fmt(header), widths.map((w, c) => (c === widths.length - 1 ? '-'.repeat(12) : '-'.repeat(w))).join('  '));
  for (const r of rows) lines.push(fmt(r));
  const share = s.totalParams ? (100 * s.factorizableParams) / s.totalParams : 0;
  const nFact = model.layers.filter((l) => l.factorizable).length;
  lines.push('', `${model.layers.length} layers (${nFact} factorizable); ${formatInteger(s.totalParams)} parameters in total, ` +
    `${formatInteger(s.factorizableParams)} (${share.toFixed(1)} %) in factorizable layers.`);
  return lines;
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
