// `rankscope spectrum MODEL --layer NAME [--json|--csv]`: one layer's singular values, largest first.
import { RankscopeError } from '../core/errors';
import { computeSpectra, defaultSpectrumCacheDir, spectrumMetrics, type LayerSpectrum } from '../core/linalg';
import { mergeDescending } from '../core/linalg/singularValues';
import { openModel, openOnnxModel } from '../core/formats';
import { selectLayers, whitenedSpectraOf } from '../core/compress';
import type { Command } from './command';
import { CALIBRATION_OPTIONS, CALIBRATION_USAGE, runCalibration } from './calibrate';
import { parseOptions, TASK_OPTIONS } from './options';

const USAGE = `Usage: rankscope spectrum MODEL --layer NAME [--json | --csv] [--no-cache] [--whitened --data D.npz]

  MODEL         an ONNX file
  --layer NAME  the layer (module path, as \`rankscope inspect\` lists it)
  --json        { layer, shape, singularValues: [...], metrics, groups? }
  --csv         index,singular_value (grouped convs: group,index,singular_value)
  --no-cache    recompute (default: cache in $RANKSCOPE_CACHE_DIR or ~/.cache/rankscope/spectra)
  --whitened    the whitened spectrum instead: σ of W·S, S·Sᵀ = the layer's input Gram on calibration
                data (σᵢ² is output energy: dropping σ_k… costs Σ σᵢ² of ‖(W − AB)X‖²; docs/whitened.md).
                Data options as in \`rankscope eval\` (--data, --input, --preset, --task), and:
${CALIBRATION_USAGE}`;

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
      whitened: { type: 'boolean', default: false },
      ...TASK_OPTIONS,
      ...CALIBRATION_OPTIONS,
    });
    if (positionals.length !== 1) throw new RankscopeError('BAD_ARGUMENT', positionals.length ? 'Give exactly one model file.' : 'Missing MODEL.', USAGE.split('\n')[0]);
    if (!values.layer) throw new RankscopeError('BAD_ARGUMENT', 'Missing --layer NAME.', 'Run `rankscope inspect MODEL` to list the layers.');
    if (values.json && values.csv) throw new RankscopeError('BAD_ARGUMENT', 'Choose one of --json and --csv.');
    const calibrationGiven = ['data', 'calibration', 'calibration-samples', 'task', 'input', 'preset', 'jitter', 'seed', 'whiten-embeddings'].filter((k) => values[k as keyof typeof values] !== undefined);
    if (!values.whitened && calibrationGiven.length) {
      throw new RankscopeError('BAD_ARGUMENT', `--${calibrationGiven[0]} sets up the calibration pass; it needs --whitened.`);
    }
    if (values.whitened) {
      const model = await openOnnxModel(positionals[0], { signal: io.signal });
      const layers = selectLayers(model, [values.layer]);
      // Report lines go to stderr: stdout stays the spectrum (JSON/CSV stay parseable).
      const { whitening, calibration } = await runCalibration(model, layers, values, { ...io, out: io.err }, values['no-cache']);
      const [groups] = [...(await whitenedSpectraOf(model, layers, whitening, { signal: io.signal })).values()];
      const singularValues = groups.length === 1 ? groups[0] : mergeDescending(groups);
      const spectrum: LayerSpectrum = { layer: layers[0].name, hash: calibration.key, shape: layers[0].shape, singularValues, metrics: spectrumMetrics(singularValues, layers[0].shape), ...(groups.length > 1 && { groups }) };
      const extra = { whitened: { calibration: calibration.key, data: calibration.data, samples: calibration.samples, seed: calibration.seed } };
      if (values.json) io.out(JSON.stringify({ ...spectrumJson(spectrum), ...extra }, null, 2));
      else if (values.csv) for (const line of spectrumCsv(spectrum)) io.out(line);
      else for (const line of spectrumTable(spectrum, 'whitened: σ of W·S, σ² = output energy on the calibration data')) io.out(line);
      return 0;
    }
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

export function spectrumTable(s: LayerSpectrum, kind?: string): string[] {
  const m = s.metrics;
  const fmt = (x: number) => (Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(4) : x.toFixed(4));
  const total = s.singularValues.reduce((a, v) => a + v * v, 0);
  const lines = [
    `${s.layer}  [${s.shape.join(' × ')}]${s.groups ? `  (${s.groups.length} groups; all groups' values below)` : ''}${kind ? `  (${kind})` : ''}`,
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
