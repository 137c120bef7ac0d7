// `npm run results`: the LORTSAR-style results tables of the bundled sample models, regenerated
// into README.md between the results markers (one section per model) and kept as
// media/samples/<model>.results.json. The numbers come from `rankscope demo --table`
// (src/cli/resultsTable.ts: plan, compress to a file, ONNX Runtime top-1, MACs and interleaved
// latency, the fine-tuning worker with and without distillation).
// Options: --models a,b (default every media/samples/*.onnx), --epochs N (default 5),
// --out DIR (default demo-output/results; one folder per model), --cuts, --allocations, --methods,
// --latency-runs (passed to demo --table: a subset runs in minutes), --render-only (rewrite README
// from the kept media/samples/<model>.results.json files).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';

const START = '<!-- rankscope:results:start -->';
const END = '<!-- rankscope:results:end -->';
const SAMPLES = 'media/samples';
const SCHEMA = 'rankscope.results/2';

const { values } = parseArgs({
  options: {
    models: { type: 'string' }, epochs: { type: 'string', default: '5' }, out: { type: 'string', default: 'demo-output/results' },
    cuts: { type: 'string' }, allocations: { type: 'string' }, methods: { type: 'string' }, 'latency-runs': { type: 'string' }, 'render-only': { type: 'boolean' },
  },
});
const models = values.models
  ? values.models.split(',').map((m) => basename(m.trim(), '.onnx')).filter(Boolean)
  : readdirSync(SAMPLES).filter((f) => f.endsWith('.onnx')).map((f) => basename(f, '.onnx')).sort();
const kept = (m) => join(SAMPLES, `${m}.results.json`);

if (!values['render-only']) {
  const pass = ['cuts', 'allocations', 'methods', 'latency-runs'].flatMap((k) => (values[k] === undefined ? [] : [`--${k}`, values[k]]));
  for (const m of models) {
    const out = join(values.out, m);
    const t0 = Date.now();
    console.log(`\n== ${m}: demo --table (${values.epochs} epoch(s))`);
    const r = spawnSync(process.execPath, ['dist/cli.js', 'demo', '--table', '-o', out, '--model', join(SAMPLES, `${m}.onnx`), '--epochs', values.epochs, ...pass], { stdio: 'inherit' });
    if (r.status !== 0) process.exit(r.status ?? 1);
    copyFileSync(join(out, 'results.json'), `${kept(m)}.tmp`);
    renameSync(`${kept(m)}.tmp`, kept(m));
    console.log(`${m}: ${((Date.now() - t0) / 60000).toFixed(1)} min`);
  }
}

const pct = (x) => (x === null || x === undefined ? '—' : `${(x * 100).toFixed(1)}`);
const mib = (b) => `${(b / 1024 / 1024).toFixed(2)} MiB`;
const millions = (n) => (n === null || n === undefined ? '—' : `${(n / 1e6).toFixed(2)} M`);
const latency = (l) => `${l.originalMs.toFixed(1)} → ${l.compressedMs.toFixed(1)} ms (×${l.ratio.toFixed(2)}${l.ratio >= 1 ? ', not faster' : ''})`;

/** One model's section: the table and what its figures mean. */
function section(t) {
  const name = basename(t.model);
  const delta = (x) => (x === null || x === undefined ? '' : ` (${x >= t.baseline.top1 ? '+' : '−'}${Math.abs((x - t.baseline.top1) * 100).toFixed(1)})`);
  const ep = `${t.epochs} ep.`;
  const slower = t.rows.filter((r) => r.latency.ratio >= 1).length;
  return [
    `### \`${name}\``,
    '',
    `${t.baseline.params.toLocaleString('en-US')} parameters (${t.baseline.factorizableParams.toLocaleString('en-US')} in factorizable layers), `
    + `${t.baseline.macs === null ? `MACs not measured (${t.macsNote})` : `${t.baseline.macs.toLocaleString('en-US')} MACs per sample`}. `
    + 'A cut removes that share of the factorizable layers\' parameters.',
    '',
    `| cut | allocation | method | layers | parameters | MACs | file size | top-1 after SVD | top-1 fine-tuned (${ep}) | top-1 distilled (${ep}) | CPU latency, original → compressed |`,
    '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    `| 0 % | (original) | | | ${millions(t.baseline.params)} | ${millions(t.baseline.macs)} | ${mib(t.baseline.fileSize)} | ${pct(t.baseline.top1)} | | | ${t.baseline.latencyMs.toFixed(1)} ms |`,
    ...t.rows.map((r) => `| −${Math.round(r.cut * 100)} % | ${r.allocation} | ${r.method} | ${r.layersCompressed} | ${millions(r.params)} | ${millions(r.macs)} | ${mib(r.fileSize)} | `
      + `${pct(r.top1Svd)}${delta(r.top1Svd)} | ${pct(r.top1Finetuned)}${delta(r.top1Finetuned)} | ${pct(r.top1Distilled)}${delta(r.top1Distilled)} | ${latency(r.latency)} |`),
    ...(t.skipped.length ? ['', `Not reachable: ${t.skipped.map((s) => `−${Math.round(s.cut * 100)} % ${s.allocation} (${s.reason})`).join('; ')}.`] : []),
    '',
    `Splits: ${t.splits} Top-1 in %, change from the baseline in brackets. ${t.options.allocations.includes('weighted') ? `${t.weighted} ` : ''}`
    + `Fine-tuning: the fine-tuning worker on the CPU (AdamW, cosine); distillation from the uncompressed model (T = 4, α = 0.7). `
    + `Latency: medians per batch of ${t.latencyBatch}, ${t.options.latencyRuns} runs of each model taken in turn in the same process; ${t.machine}.`
    + (slower ? ` ${slower} of ${t.rows.length} compressed models are not faster than the original (ratio ≥ 1): a factor pair runs two products where the original ran one, which pays only when k(m+n) is well under m·n and the layer's share of the run time is large; small layers and runtime overhead (an extra node, memory traffic) can eat the saving.` : '')
    + ` This table took ${Math.round(t.seconds / 60)} min.`,
  ];
}

const tables = [];
for (const m of models) {
  if (!existsSync(kept(m))) { console.log(`${m}: no ${kept(m)} yet; run npm run results -- --models ${m}`); continue; }
  const t = JSON.parse(readFileSync(kept(m), 'utf8'));
  if (t.schema !== SCHEMA) { console.log(`${kept(m)}: an older table format; regenerate it with npm run results -- --models ${m}`); continue; }
  tables.push(t);
}
const lines = tables.flatMap((t) => [...section(t), '']);
lines.push(`Regenerate with \`npm run results\` (every model in ${SAMPLES}; \`-- --models NAME\` for one, \`--cuts 0.5 --allocations energy --epochs 1\` for a quick subset). `
  + 'Latency figures taken under other load are noisy; compare them within one row (both models timed in turn) only.');
const block = `${START}\n${lines.join('\n')}\n${END}`;

let readme = readFileSync('README.md', 'utf8');
if (readme.includes(START) && readme.includes(END)) {
  readme = readme.slice(0, readme.indexOf(START)) + block + readme.slice(readme.indexOf(END) + END.length);
} else {
  readme = `${readme.trimEnd()}\n\n## Results on the bundled samples\n\n${block}\n`;
}
writeFileSync('README.md.tmp', readme);
renameSync('README.md.tmp', 'README.md');
console.log(`README.md: results tables of ${tables.map((t) => basename(t.model)).join(', ') || 'no model'}`);
