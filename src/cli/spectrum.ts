// `rankscope spectrum MODEL --layer NAME [--json|--csv]`: one layer's singular values, largest first.
import { RankscopeError } from '../core/errors';
import { computeSpectra, defaultSpectrumCacheDir, type LayerSpectrum } from '../core/linalg';
import { openModel } from '../core/formats';
import type { Command } from './command';
import { parseOptions } from './options';

const USAGE = `Usage: rankscope spectrum MODEL --layer NAME [--json | --csv] [--no-cache]

  MODEL         an ONNX file
  --layer NAME  the layer (module path, as \`rankscope inspect\` lists it)
  --json        { layer, shape, singularValues: [...], metrics, groups? }
  --csv         index,singular_value (grouped convs: group,index,singular_value)
  --no-cache    recompute (default: cache in $RANKSCOPE_CACHE_DIR or ~/.cache/rankscope/spectra)`;

export const spectrumCommand: Command = {
  name: 'spectrum',
  summary: "Print one layer's singular values, largest first, with its spectrum metrics.",
  usage: USAGE,
  async run(argv, io) {
    const { values, positionals } = parseOptions(argv, {
      layer: { type: 'string' },
      json: { type: 'boolean', default: false },
      csv: { type: 'boolean', default: false },
      'no-cache': { type: 'boolean', default: false },
    });
    if (positionals.length !== 1) throw new RankscopeError('BAD_ARGUMENT', positionals.length ? 'Give exactly one model file.' : 'Missing MODEL.', USAGE.split('\n')[0]);
    if (!values.layer) throw new RankscopeError('BAD_ARGUMENT', 'Missing --layer NAME.', 'Run `rankscope inspect MODEL` to list the layers.');
    if (values.json && values.csv) throw new RankscopeError('BAD_ARGUMENT', 'Choose one of --json and --csv.');
    const model = await openModel(positionals[0], { signal: io.signal });
    const [spectrum] = await computeSpectra(model, {
      layers: [values.layer],
      signal: io.signal,
      cacheDir: values['no-cache'] ? undefined : defaultSpectrumCacheDir(),
    });
    if (values.json) io.out(JSON.stringify(spectrumJson(spectrum), null, 2));
    else if (values.csv) for (const line of spectrumCsv(spectrum)) io.out(line);
    else for (const line of spectrumTable(spectrum)) io.out(line);
    return 0;
  },
};

export function spectrumJson(s: LayerSpectrum) {
  return {
    layer: s.layer,
    shape: s.shape,
    singularValues: Array.from(s.singularValues),
    metrics: s.metrics,
    ...(s.groups && { groups: s.groups.map((g) => Array.from(g)) }),
  };
}

export function spectrumCsv(s: LayerSpectrum): string[] {
  if (s.groups) return ['group,index,singular_value', ...s.groups.flatMap((g, gi) => Array.from(g, (v, i) => `${gi},${i},${v}`))];
  return ['index,singular_value', ...Array.from(s.singularValues, (v, i) => `${i},${v}`)];
}

export function spectrumTable(s: LayerSpectrum): string[] {
  const m = s.metrics;
  const fmt = (x: number) => (Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(4) : x.toFixed(4));
  const total = s.singularValues.reduce((a, v) => a + v * v, 0);
  const lines = [
    `${s.layer}  [${s.shape.join(' × ')}]${s.groups ? `  (${s.groups.length} groups; all groups' values below)` : ''}`,
    `  ‖W‖_F ${fmt(m.frobenius)}  ‖W‖₂ ${fmt(m.spectral)}  stable rank ${m.stableRank.toFixed(2)}  effective rank ${m.effectiveRank.toFixed(1)}  numerical rank ${m.numericalRank}`,
    `  rank for 90/95/99 % energy: ${m.energyRank['0.9']} / ${m.energyRank['0.95']} / ${m.energyRank['0.99']}` +
      (m.alpha !== undefined ? `   alpha ${m.alpha.toFixed(2)} (KS ${m.alphaKs!.toFixed(3)})` : `   alpha: ${m.alphaReason}`),
    '',
    `  ${'i'.padStart(5)}  ${'σ_i'.padStart(12)}  ${'energy ≤ i'.padStart(10)}`,
  ];
  let kept = 0;
  s.singularValues.forEach((v, i) => {
    kept += v * v;
    lines.push(`  ${String(i).padStart(5)}  ${fmt(v).padStart(12)}  ${(total > 0 ? (100 * kept) / total : 0).toFixed(2).padStart(9)}%`);
  });
  return lines;
}
