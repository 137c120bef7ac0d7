// `rankscope sweep MODEL --data D --levels …|--energies … -o DIR`: the accuracy/size trade-off,
// written as sweep.json, sweep.csv, sweep.svg and a standalone sweep.html.
import { join } from 'node:path';
import { RankscopeError } from '../core/errors';
import { isSweepAllocation, SWEEP_ALLOCATIONS, type SweepAllocation } from '../core/compress/budget';
import { loadDataset, type Dataset } from '../core/eval/dataset';
import type { ScoreMetric } from '../core/eval/metrics';
import { calibrationText, metricLabel, writeSweepReport } from '../core/eval/report';
import { OrtRunner } from '../core/eval/runner';
import { calibrationCandidates } from '../core/compress';
import { progressText, runSweep, SWEEP_METHODS, type SweepMethod, type SweepPoint } from '../core/eval/sweep';
import { resolveTask } from '../core/eval/task';
import { openOnnxModel } from '../core/formats';
import { computeSpectra } from '../core/linalg';
import type { Command } from './command';
import { CALIBRATION_OPTIONS, CALIBRATION_USAGE, runCalibration } from './calibrate';
import { cliOverrides, intOption, nameList, numberList, parseOptions, TASK_OPTIONS, taskFileFor } from './options';

const usage = `rankscope sweep [MODEL] --data DATA.npz (--levels 0.1,0.3,… | --energies 0.9,0.99,…) -o DIR [options]

Compresses MODEL in memory at each level, evaluates it with ONNX Runtime and writes
DIR/sweep.json, sweep.csv, sweep.svg and sweep.html (score vs parameters, Pareto front).
  --levels LIST        global budgets: fraction of the layers' parameters to remove
  --energies LIST      energy thresholds: each layer keeps this fraction of its spectral energy
  --allocation LIST    for budgets (comma-separated; default energy): energy (greedy by energy kept
                       per parameter), uniform (every layer alike), sensitivity (probes each layer
                       alone, then the least summed measured loss: a knapsack), whitened (least
                       summed output error from the calibration pass; no evaluation)
  --methods LIST       factorization methods compared at every level: svd (default), whitened
                       (SVD of W·S from each layer's input Gram; docs/whitened.md). whitened
                       calibrates on the sweep's data (or --calibration D.npz):
${CALIBRATION_USAGE}
  --metric M           top1 | top5 | agreement | kl (default top1 with labels, else agreement)
  --layers LIST        layer names or globs to compress (default: all factorizable)
  --sensitivity-samples N   size of the calibration subset the per-layer probes run on: samples
                       drawn at random from the data (default 256; all when the data has fewer)
  --sensitivity-seed S      seed of that draw (default 0)
  --sensitivity-epsilon E   a probe rank whose kept energy is within E of a lower probed rank's
                       takes that rank's loss instead of being measured (default 0.002; 0 = measure all)
  --sensitivity-measure M   what a probe's loss is: kl (default), top1, top5, agreement
  The points that need no probes are measured (and printed) first, then the probes, as a stage
  of their own in the progress line, then the sensitivity points.
  --runs N             timed runs per point for latency (default 10; 0 = skip)
  --no-cache           recompute every point (default: cache in DIR/.cache, re-runs skip known points)
  data options as in \`rankscope eval\`: --task --input --labels --preset --output --batch-size --limit --ep --threads
  --json               print sweep.json to stdout as well`;

function sensitivityMeasure(text: string | undefined): 'kl' | 'top1' | 'top5' | 'agreement' | undefined {
  if (text === undefined) return undefined;
  if (!['kl', 'top1', 'top5', 'agreement'].includes(text)) throw new RankscopeError('BAD_ARGUMENT', `--sensitivity-measure takes kl, top1, top5 or agreement; got '${text}'.`);
  return text as 'kl' | 'top1' | 'top5' | 'agreement';
}

function energyEpsilon(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const e = Number(text);
  if (!(text.trim() !== '' && Number.isFinite(e) && e >= 0 && e < 1)) throw new RankscopeError('BAD_ARGUMENT', `--sensitivity-epsilon takes a kept-energy difference in [0, 1); got '${text}'.`, 'e.g. --sensitivity-epsilon 0.002, or 0 to measure every probe rank.');
  return e;
}

export const sweepCommand: Command = {
  name: 'sweep',
  summary: 'Sweep compression levels: accuracy vs size, Pareto front, HTML/SVG/CSV report.',
  usage,
  async run(argv, io) {
    const { values, positionals } = parseOptions(argv, {
      ...TASK_OPTIONS,
      levels: { type: 'string' }, energies: { type: 'string' }, allocation: { type: 'string' }, metric: { type: 'string' },
      layers: { type: 'string' }, 'sensitivity-samples': { type: 'string' }, 'sensitivity-seed': { type: 'string' }, 'sensitivity-epsilon': { type: 'string' }, 'sensitivity-measure': { type: 'string' }, runs: { type: 'string' }, 'no-cache': { type: 'boolean' },
      out: { type: 'string', short: 'o' }, json: { type: 'boolean' },
      methods: { type: 'string' }, ...CALIBRATION_OPTIONS,
    });
    const given = nameList(values.methods) as SweepMethod[] | undefined;
    for (const m of given ?? []) if (!SWEEP_METHODS.includes(m)) throw new RankscopeError('BAD_ARGUMENT', `--methods takes ${SWEEP_METHODS.join(', ')}; got '${m}'.`);
    const task = resolveTask(await taskFileFor(values.task), cliOverrides(values));
    const methods = given ?? task.sweep.methods;
    const modelPath = positionals[0] ?? task.model;
    if (!modelPath) throw new RankscopeError('BAD_ARGUMENT', 'which model? Give MODEL or "model" in rankscope.json.');
    if (!task.dataset) throw new RankscopeError('BAD_ARGUMENT', 'no evaluation data: give --data DATA.npz (or "data" in rankscope.json).');
    const levels = numberList(values.levels, '--levels') ?? (values.energies ? undefined : task.sweep.levels);
    const energies = numberList(values.energies, '--energies') ?? (values.levels ? undefined : task.sweep.energies);
    if (!levels?.length && !energies?.length) throw new RankscopeError('BAD_ARGUMENT', 'give --levels (budgets) or --energies (thresholds).', 'e.g. --levels 0.1,0.2,0.3,0.5');
    const allocations = (nameList(values.allocation) ?? task.sweep.allocations ?? ['energy']) as SweepAllocation[];
    for (const a of allocations) if (!isSweepAllocation(a)) throw new RankscopeError('BAD_ARGUMENT', `--allocation takes ${SWEEP_ALLOCATIONS.join(', ')}; got '${a}'.`);
    const metric = (values.metric ?? undefined) as ScoreMetric | undefined;
    if (metric && !['top1', 'top5', 'agreement', 'kl'].includes(metric)) throw new RankscopeError('BAD_ARGUMENT', `--metric takes top1, top5, agreement or kl; got '${metric}'.`);
    const out = values.out ?? task.sweep.out;
    if (!out) throw new RankscopeError('BAD_ARGUMENT', 'where should the report go? Give -o DIR.');
    const runs = values.runs === undefined ? (task.latency ? Math.min(task.latency.runs, 10) : 0) : intOption(values.runs, '--runs', 0);
    const layers = values.layers?.split(',').map((s) => s.trim()).filter(Boolean) ?? task.sweep.layers;

    const model = await openOnnxModel(modelPath, { signal: io.signal });
    const status = (s: string) => { if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${s}`); else if (s) io.err(s); };
    status('computing spectra…');
    const spectra = await computeSpectra(model, { signal: io.signal, order: 'module' });
    const calibrated = methods?.includes('whitened') || allocations.includes('whitened');
    let whitening;
    if (calibrated) {
      ({ whitening } = await runCalibration(model, calibrationCandidates(model, layers), values, values.json ? { ...io, out: io.err } : io, values['no-cache'] === true));
    }
    const runner = OrtRunner.create({ ep: task.ep, intraOpThreads: task.threads, signal: io.signal });
    let dataset: Dataset | undefined;
    try {
      const probe = await runner.open(modelPath);
      dataset = await loadDataset(task.dataset, probe.inputs);
      await probe.close();
      const line = (p: SweepPoint) => {
        const s = metric === 'kl' || (!metric && !dataset!.hasLabels) ? p.score.toPrecision(4) : `${(p.score * 100).toFixed(2)} %`;
        return `${p.label.padEnd(24)} ${String(p.params).padStart(12)} params  ${s.padStart(9)}${p.latency ? `  ${p.latency.medianMs.toFixed(2)} ms/batch` : ''}${p.cached ? '  (cached)' : ''}`;
      };
      const result = await runSweep({ levels, energies, allocations, layers, ...(methods && { methods }) }, {
        model, spectra, dataset, runner, metric, batchSize: task.batchSize, output: task.output,
        latency: runs > 0 ? { warmup: task.latency ? task.latency.warmup : 3, runs } : false,
        cacheDir: values['no-cache'] ? undefined : join(out, '.cache'),
        whitening,
        sensitivity: {
          samples: values['sensitivity-samples'] ? intOption(values['sensitivity-samples'], '--sensitivity-samples') : undefined,
          seed: values['sensitivity-seed'] ? intOption(values['sensitivity-seed'], '--sensitivity-seed', 0) : undefined,
          energyEpsilon: energyEpsilon(values['sensitivity-epsilon']),
          measure: sensitivityMeasure(values['sensitivity-measure']),
        },
        signal: io.signal,
        onProgress: (p) => status(progressText(p)),
        onPoint: (p) => { status(''); if (!values.json) io.out(line(p)); },
      });
      status('');
      const files = await writeSweepReport(result, out, io.signal);
      if (values.json) io.out(JSON.stringify(result, null, 2));
      else {
        const t = result.timing;
        io.out(`\nmetric: ${metricLabel(result.metric)}; Pareto front: ${result.front.join(', ')}`);
        if (result.calibration) io.out(calibrationText(result.calibration));
        io.out(`wall time ${t.total.toFixed(1)} s: compression ${t.compress.toFixed(1)} s, evaluation ${t.evaluate.toFixed(1)} s, latency ${t.latency.toFixed(1)} s, sensitivity probes ${t.sensitivity.toFixed(1)} s (${t.cachedPoints} cached)`);
        io.out(`wrote ${files.join(', ')}`);
      }
      return 0;
    } finally {
      await dataset?.close();
      await runner.dispose();
    }
  },
};
