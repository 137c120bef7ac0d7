// `npm run bench:open-pt`: open + layer inventory of a ~500 MB PyTorch checkpoint (a Transformer
// state dict written by torch.save), against torch.load of the same file in the same run. Each
// open is a fresh child process (peak RSS = the cost of one open). Open reads the zip directory
// and the pickle only; "first layer" adds reading one layer's weights, the lazy part.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { openModel } from '../src/core/formats';
import { BENCH_DATA, rerunArgs } from './paths';

const DATA = BENCH_DATA;
const MODEL = join(DATA, 'transformer-500mb.pt');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const PY = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** d=1024, 8 layers of q/k/v/out + fc1/fc2 (4096), a 30000-token embedding: ~126 M params, ~505 MB. */
const GENERATE = `import sys, torch
torch.manual_seed(0)
D, F, L, V = 1024, 4096, 8, 30000
sd = {'embed.weight': torch.randn(V, D) * 0.02}
for l in range(L):
    p = f'encoder.layers.{l}.'
    for n in ('q_proj', 'k_proj', 'v_proj', 'out_proj'):
        sd[p + 'self_attn.' + n + '.weight'] = torch.randn(D, D) * 0.02
        sd[p + 'self_attn.' + n + '.bias'] = torch.zeros(D)
    sd[p + 'fc1.weight'] = torch.randn(F, D) * 0.02; sd[p + 'fc1.bias'] = torch.zeros(F)
    sd[p + 'fc2.weight'] = torch.randn(D, F) * 0.02; sd[p + 'fc2.bias'] = torch.zeros(D)
    sd[p + 'norm1.weight'] = torch.ones(D); sd[p + 'norm1.bias'] = torch.zeros(D)
torch.save({'epoch': 1, 'state_dict': sd}, sys.argv[1])`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function child(path: string): Promise<void> {
  const t0 = performance.now();
  const m = await openModel(path);
  const ms = performance.now() - t0;
  const t1 = performance.now();
  const first = m.tensor(m.layers[0].weight)!.toFloat32();
  const firstLayerMs = performance.now() - t1;
  if (first.length !== m.layers[0].params) throw new Error('bad read');
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  const rss = hwm ? Number(hwm[1]) * 1024 : process.resourceUsage().maxRSS * 1024;
  process.stdout.write(JSON.stringify({ ms, firstLayerMs, rss, layers: m.layers.length }) + '\n');
}

function torchLoad(path: string): { ms: number; rss: number } | undefined {
  const r = spawnSync(PY, ['-c', `import time, sys, resource, torch
t = time.perf_counter(); sd = torch.load(sys.argv[1], map_location='cpu'); ms = (time.perf_counter() - t) * 1000
print(ms, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)`, path], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  const [ms, rss] = r.stdout.trim().split(/\s+/).map(Number);
  return { ms, rss };
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return child(process.argv[3]);
  if (!existsSync(MODEL)) {
    mkdirSync(DATA, { recursive: true });
    console.log(`generating ${MODEL} with torch.save (once) …`);
    const g = spawnSync(PY, ['-c', GENERATE, MODEL], { stdio: 'inherit' });
    if (g.status !== 0) throw new Error('generating the checkpoint needs torch under ' + PY);
  }
  const size = statSync(MODEL).size;
  console.log(`bench:open-pt  ${MODEL}`);
  console.log(`  file ${(size / 2 ** 20).toFixed(1)} MiB; ${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ${RUNS} runs`);
  const ours: { ms: number; firstLayerMs: number; rss: number; layers: number }[] = [];
  const ref: { ms: number; rss: number }[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = spawnSync(process.execPath, rerunArgs('--child', MODEL), { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    ours.push(JSON.parse(r.stdout.trim().split('\n').at(-1)!));
    const p = torchLoad(MODEL);
    if (p) ref.push(p);
  }
  const ms = median(ours.map((o) => o.ms));
  console.log(`  rankscope open + inventory: median ${ms.toFixed(0)} ms (runs: ${ours.map((o) => o.ms.toFixed(0)).join(', ')}), ${ours[0].layers} layers`);
  console.log(`    then the first layer's weights: median ${median(ours.map((o) => o.firstLayerMs)).toFixed(0)} ms`);
  console.log(`  peak RSS ${(Math.max(...ours.map((o) => o.rss)) / 2 ** 20).toFixed(0)} MiB (file ${(size / 2 ** 20).toFixed(0)} MiB)`);
  if (ref.length) {
    const p = median(ref.map((r) => r.ms));
    console.log(`  torch.load (all tensors into memory): median ${p.toFixed(0)} ms (runs: ${ref.map((r) => r.ms.toFixed(0)).join(', ')}), peak RSS ${(Math.max(...ref.map((r) => r.rss)) / 2 ** 20).toFixed(0)} MiB`);
    console.log(`  ratio torch.load / rankscope open = ${(p / ms).toFixed(1)}×`);
  } else {
    console.log('  torch not available: no reference timing');
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
