// `npm run results`: the LORTSAR-style results table of the bundled sample, regenerated into
// README.md between the results markers (and kept as media/samples/<model>.results.json).
// The numbers come from `rankscope demo --table` (the same core as every command: plan,
// compress to a file, ONNX Runtime top-1 and latency, the fine-tuning worker with and without
// distillation). Options: --epochs N (default 3), --out DIR (default demo-output/results),
// --model FILE (default the sample Transformer), --render-only (rewrite README from an existing results.json).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';

const START = '<!-- rankscope:results:start -->';
const END = '<!-- rankscope:results:end -->';

const { values } = parseArgs({ options: { epochs: { type: 'string', default: '3' }, out: { type: 'string', default: 'demo-output/results' }, model: { type: 'string' }, 'render-only': { type: 'boolean' } } });
const resultsPath = join(values.out, 'results.json');
const KEPT = `media/samples/${basename(values.model ?? 'skeleton-transformer.onnx', '.onnx')}.results.json`;

if (!values['render-only']) {
  const r = spawnSync(process.execPath, ['dist/cli.js', 'demo', '--table', '-o', values.out, '--epochs', values.epochs, ...(values.model ? ['--model', values.model] : [])], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
  copyFileSync(resultsPath, KEPT);
}
const source = existsSync(resultsPath) ? resultsPath : KEPT;
const table = JSON.parse(readFileSync(source, 'utf8'));

const pct = (x) => (x === null || x === undefined ? '—' : `${(x * 100).toFixed(1)}`);
const delta = (x) => (x === null || x === undefined ? '' : ` (${x >= table.baseline.top1 ? '+' : '−'}${Math.abs((x - table.baseline.top1) * 100).toFixed(1)})`);
const mib = (b) => `${(b / 1024 / 1024).toFixed(2)} MiB`;
const params = (n) => `${(n / 1e6).toFixed(2)} M`;
const lines = [
  `Bundled sample (\`media/samples/${basename(table.model)}\`, ${table.baseline.params.toLocaleString('en-US')} parameters) on its `
  + `cross-subject test split; a cut removes that share of the factorizable layers' parameters. Fine-tuning: ${table.epochs} epoch${table.epochs === 1 ? "" : "s"} `
  + `on the CPU with the fine-tuning worker (AdamW, cosine; the best validation epoch is written back); distillation from the `
  + `uncompressed model (T = 4, α = 0.7). Latency: median per batch, ${table.machine}. Top-1 in %, change from the baseline in brackets.`,
  '',
  `| cut | allocation | parameters | file size | top-1 after SVD | top-1 fine-tuned (${table.epochs} ep.) | top-1 distilled (${table.epochs} ep.) | CPU latency |`,
  '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  `| 0 % | (original) | ${params(table.baseline.params)} | ${mib(table.baseline.fileSize)} | ${pct(table.baseline.top1)} | | | ${table.baseline.latencyMs.toFixed(2)} ms |`,
  ...table.rows.map((r) => `| ${Math.round(r.cut * 100)} % | ${r.allocation} | ${params(r.params)} | ${mib(r.fileSize)} | ${pct(r.top1Svd)}${delta(r.top1Svd)} | `
    + `${pct(r.top1Finetuned)}${delta(r.top1Finetuned)} | ${pct(r.top1Distilled)}${delta(r.top1Distilled)} | ${r.latencyMs.toFixed(2)} ms |`),
  '',
  `Regenerate with \`npm run results${basename(table.model) === 'skeleton-transformer.onnx' ? '' : ` -- --model media/samples/${basename(table.model)}`}\``
  + ` (${Math.round(table.seconds / 60)} min on the machine above). Latency figures taken under other load are noisy; compare them within one run only.`,
];
const others = ['skeleton-transformer', 'skeleton-catformer'].filter((m) => m !== basename(table.model, '.onnx') && existsSync(`media/samples/${m}.results.json`));
for (const m of others) lines.push('', `The same table for \`${m}.onnx\`: \`media/samples/${m}.results.json\`.`);
const block = `${START}\n${lines.join('\n')}\n${END}`;

let readme = readFileSync('README.md', 'utf8');
if (readme.includes(START) && readme.includes(END)) {
  readme = readme.slice(0, readme.indexOf(START)) + block + readme.slice(readme.indexOf(END) + END.length);
} else {
  readme = `${readme.trimEnd()}\n\n## Results on the bundled sample\n\n${block}\n`;
}
writeFileSync('README.md.tmp', readme);
renameSync('README.md.tmp', 'README.md');
console.log(`README.md: results table from ${source} (${table.rows.length} rows)`);
