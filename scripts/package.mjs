// `npm run package`: a per-platform .vsix with @vscode/vsce. The bundles carry every JS
// dependency, so the only node_modules shipped are onnxruntime-node (+ onnxruntime-common) with
// exactly THIS platform's native binaries; no sources, tests, maps or dev files (.vscodeignore).
// The contents are then checked, and listed with `vsce ls` for the record.
//   node scripts/package.mjs [--target linux-x64|linux-arm64|darwin-x64|darwin-arm64|win32-x64|win32-arm64]
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, rmSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const TARGETS = ['linux-x64', 'linux-arm64', 'darwin-x64', 'darwin-arm64', 'win32-x64', 'win32-arm64'];
const target = args.includes('--target') ? args[args.indexOf('--target') + 1] : `${process.platform}-${process.arch}`;
if (!TARGETS.includes(target)) {
  console.error(`package: unsupported target '${target}' (one of ${TARGETS.join(', ')})`);
  process.exit(2);
}
const [platform, arch] = target.split('-');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const ortBin = `node_modules/onnxruntime-node/bin/napi-v6/${platform}/${arch}`;
if (!existsSync(join(root, ortBin))) {
  console.error(`package: ${ortBin} is missing: this onnxruntime-node install has no ${target} binaries.`);
  process.exit(1);
}

function run(cmd, argv, options = {}) {
  const r = spawnSync(cmd, argv, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 1 << 28, ...options });
  if (r.status !== 0) {
    process.stdout.write(r.stdout ?? '');
    console.error(`package: ${cmd} ${argv.join(' ')} failed (${r.status})`);
    process.exit(1);
  }
  return r.stdout;
}

// 1. Production bundles (minified, no maps; stale maps in dist/ are left out by .vscodeignore).
run(process.execPath, ['scripts/build.mjs', '--production'], { stdio: 'inherit' });

// 2. .vscodeignore + this platform's ORT binaries.
const ignoreFile = join(tmpdir(), `rankscope-vscodeignore-${target}-${process.pid}`);
writeFileSync(ignoreFile, `${readFileSync(join(root, '.vscodeignore'), 'utf8')}\n!${ortBin}/*\n`);
const vsce = join(root, 'node_modules', '@vscode', 'vsce', 'vsce');
const common = ['--ignoreFile', ignoreFile];
mkdirSync(join(root, 'out'), { recursive: true });
const out = join(root, 'out', `${pkg.name}-${target}-${pkg.version}.vsix`);
// README links stay relative (docs/images/…): nothing is published to a marketplace from here.
run(process.execPath, [vsce, 'package', '--target', target, '--out', out, '--skip-license', '--allow-missing-repository', '--no-rewrite-relative-links', ...common]);

// 3. What is inside: `vsce ls` with the same rules, then checks on the file list.
const files = run(process.execPath, [vsce, 'ls', ...common]).split('\n').map((l) => l.trim()).filter(Boolean);
const problems = [];
const dev = files.filter((f) => /^(test|bench|scripts|webview|proto|docs|\.vscode-test|\.ci)\//.test(f) || /\.(ts|map|mjs)$/.test(f) || (f.startsWith('src/') && !f.startsWith('src/worker/python/')));
if (dev.length) problems.push(`dev files: ${dev.slice(0, 10).join(', ')}`);
const natives = files.filter((f) => f.startsWith('node_modules/onnxruntime-node/bin/'));
const foreign = natives.filter((f) => !f.startsWith(`${ortBin}/`));
if (foreign.length) problems.push(`other platforms' binaries: ${foreign.join(', ')}`);
if (!natives.some((f) => f.endsWith('onnxruntime_binding.node'))) problems.push(`no ${target} onnxruntime binding`);
for (const needed of ['dist/extension.js', 'dist/spectra-worker.js', 'dist/ort-worker.js', 'dist/factor-worker.js', 'media/rankscope.svg', 'schemas/rankscope.schema.json', 'src/worker/python/rankscope_worker/__main__.py', 'src/worker/python/rankscope_torch/__init__.py', 'src/worker/python/rankscope_torch/lowrank.py']) {
  if (!files.includes(needed)) problems.push(`missing ${needed}`);
}
const otherModules = [...new Set(files.filter((f) => f.startsWith('node_modules/')).map((f) => f.split('/').slice(1, f.split('/')[1].startsWith('@') ? 3 : 2).join('/')))];
rmSync(ignoreFile, { force: true });

// 4. On its own platform: the packaged ONNX Runtime loads from the unpacked layout and runs.
if (target === `${process.platform}-${process.arch}`) {
  const unpacked = join(tmpdir(), `rankscope-vsix-${process.pid}`);
  run('unzip', ['-q', '-o', out, '-d', unpacked]);
  const probe = `const ort = require(${JSON.stringify(join(unpacked, 'extension', 'node_modules', 'onnxruntime-node'))});
    const t = new ort.Tensor('float32', new Float32Array([1, 2]), [2]);
    if (t.size !== 2 || typeof ort.InferenceSession.create !== 'function') process.exit(1);
    console.log('onnxruntime-node ' + require(${JSON.stringify(join(unpacked, 'extension', 'node_modules', 'onnxruntime-node', 'package.json'))}).version + ' loads from the .vsix layout');`;
  process.stdout.write(`package: ${run(process.execPath, ['-e', probe])}`);
  rmSync(unpacked, { recursive: true, force: true });
}
console.log(`package: ${out} (${(statSync(out).size / 2 ** 20).toFixed(1)} MiB, ${files.length} files, target ${target})`);
console.log(`package: node_modules shipped: ${otherModules.join(', ')}; native: ${natives.join(', ')}`);
if (problems.length) {
  for (const p of problems) console.error(`package: ${p}`);
  process.exit(1);
}
