// The built CLI (dist/cli.js) as a shell runs it: stdout through a real pipe arrives whole, and
// Ctrl-C (SIGINT) during the write exits 130 leaving nothing behind.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, watch } from 'node:fs';
import { join, resolve } from 'node:path';
import { runPython } from '../helpers/python';
import { tempDir } from './formats/fixtures';

const CLI = resolve('dist/cli.js');
let dir: string;
before(() => {
  if (!existsSync(CLI)) assert.equal(spawnSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' }).status, 0);
  dir = tempDir('rankscope-process-');
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('stdout through a pipe arrives whole (inspect --json of 300 layers, > 64 KiB)', () => {
  const model = join(dir, 'many.onnx');
  runPython(`import sys, numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto
nodes, inits, prev = [], [], 'x'
for i in range(300):
    w = numpy_helper.from_array(np.random.RandomState(i).randn(8, 8).astype(np.float32), f'layers.{i}.weight')
    inits.append(w)
    nodes.append(helper.make_node('MatMul', [prev, w.name], [f'h{i}'], name=f'/layers.{i}/MatMul'))
    prev = f'h{i}'
g = helper.make_graph(nodes, 'chain', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 8])], [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, 8])], inits)
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]), sys.argv[1])`, [model]);
  const file = join(dir, 'inspect.json');
  const toFile = spawnSync('sh', ['-c', `"${process.execPath}" "${CLI}" inspect "${model}" --json > "${file}"`]);
  assert.equal(toFile.status, 0, toFile.stderr.toString());
  const fileBytes = Number(spawnSync('wc', ['-c', file], { encoding: 'utf8' }).stdout.trim().split(/\s+/)[0]);
  assert.ok(fileBytes > 100_000, `the output is big enough to fill a pipe (${fileBytes} bytes)`);
  // A reader that starts late, as `| (sleep; wc -c)` does: the pipe fills before it reads.
  for (const reader of ['wc -c', '(sleep 0.3; wc -c)']) {
    const r = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" "${CLI}" inspect "${model}" --json | ${reader}; echo "exit $?"`], { encoding: 'utf8' });
    const [count, status] = r.stdout.trim().split('\n');
    assert.equal(Number(count.trim()), fileBytes, `through | ${reader}`);
    assert.equal(status, 'exit 0');
  }
});

test('Ctrl-C while the model is being written: exit 130, no output and no temp file', { timeout: 120_000 }, async () => {
  // One small layer to compress and a 64 MiB embedding carried over: the write takes a while.
  const model = join(dir, 'big.onnx');
  runPython(`import sys, numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto
emb = numpy_helper.from_array(np.arange(2**20 * 16, dtype=np.float32).reshape(2**20, 16) / 2**24, 'embed.weight')
fc = numpy_helper.from_array(np.random.RandomState(0).randn(16, 16).astype(np.float32), 'fc.weight')
nodes = [helper.make_node('Gather', ['embed.weight', 'ids'], ['e'], name='/embed/Gather'),
         helper.make_node('MatMul', ['e', 'fc.weight'], ['y'], name='/fc/MatMul')]
g = helper.make_graph(nodes, 'big', [helper.make_tensor_value_info('ids', TensorProto.INT64, [1])], [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 16])], [emb, fc])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]), sys.argv[1])`, [model]);
  const outDir = join(dir, 'out');
  mkdirSync(outDir);
  const out = join(outDir, 'big.small.onnx');
  const child = spawn(process.execPath, [CLI, 'compress', model, '-o', out, '--rank', '2', '--layers', 'fc', '--no-cache'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b) => { stderr += b; });
  child.stdout.resume();
  let sawTemp = '';
  const interrupt = () => {
    const temp = readdirSync(outDir).find((f) => f.endsWith('.tmp'));
    if (temp && !sawTemp) {
      sawTemp = temp;
      child.kill('SIGINT');
    }
  };
  const watcher = watch(outDir, interrupt);
  const poll = setInterval(interrupt, 2);
  const code = await new Promise<number | null>((done) => child.on('exit', (c) => done(c)));
  watcher.close();
  clearInterval(poll);
  assert.ok(sawTemp, `the write started (a temp file appeared); stderr: ${stderr}`);
  assert.match(stderr, /Cancelling/);
  assert.equal(code, 130, stderr);
  assert.deepEqual(readdirSync(outDir), [], 'nothing partial: no output, no temp file');
});
