// The Markdown report Export Report writes: the model, its totals, and every layer with its
// spectrum statistics — what a reviewer needs to judge a compression without opening VS Code.
import { basename } from 'node:path';
import type { LayerSpectrum } from '../core/linalg';
import type { Model } from '../core/model/types';
import { formatBytes, formatCount, formatInteger, formatPercent, formatSaved, formatShape } from '../core/format';

/** Escapes text for a Markdown table cell (names come from untrusted files). */
function cell(s: string): string {
  return s.replace(/[\\`*_[\]<>|]/g, (c) => `\\${c}`).replace(/\n/g, ' ');
}

export function markdownReport(model: Model, spectra: (layer: string) => LayerSpectrum | undefined, totals: { original: number; current: number }): string {
  const s = model.summary;
  const lines: string[] = [];
  lines.push(`# Rankscope report: ${cell(basename(s.path))}`, '');
  lines.push(`- File: \`${s.path.replace(/`/g, "'")}\` (${formatBytes(s.fileSize)})`);
  lines.push(`- Producer: ${cell([s.producer.name, s.producer.version].filter(Boolean).join(' ') || 'unknown')}, IR ${s.irVersion}, opsets ${s.opsets.map((o) => `${o.domain || 'ai.onnx'} ${o.version}`).join(', ')}`);
  lines.push(`- Parameters: ${formatInteger(totals.current)}${totals.original !== totals.current ? ` (original ${formatInteger(totals.original)}, ${formatSaved(totals.original, totals.current)})` : ''}`);
  lines.push(`- Layers: ${model.layers.length}, factorizable ${model.layers.filter((l) => l.factorizable).length} holding ${formatCount(s.factorizableParams)} parameters`);
  const compressed = model.layers.filter((l) => l.compressed);
  if (compressed.length) lines.push(`- Compressed by Rankscope: ${compressed.length} layer${compressed.length === 1 ? '' : 's'}`);
  lines.push('', '| layer | op | shape [out, in] | params | r90 | r95 | r99 | stable rank | compressed |', '|---|---|---|---:|---:|---:|---:|---:|---|');
  for (const l of model.layers) {
    const m = spectra(l.name)?.metrics;
    const c = l.compressed;
    lines.push(`| ${cell(l.name)} | ${l.op} | ${formatShape(l.shape)} | ${formatInteger(l.params)} | ${m?.energyRank['0.9'] ?? '—'} | ${m?.energyRank['0.95'] ?? '—'} | ${m?.energyRank['0.99'] ?? '—'} | ${m ? m.stableRank.toFixed(1) : '—'} | ${c ? `rank ${c.rank}, ${formatPercent(c.energyKept)} energy` : l.factorizable ? '' : cell(l.reason ?? 'not factorizable')} |`);
  }
  lines.push('', 'r90/r95/r99: the rank that keeps 90/95/99 % of the squared singular values (energy).', '');
  return lines.join('\n');
}
