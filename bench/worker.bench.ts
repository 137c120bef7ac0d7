// `npm run bench:worker [-- --model skeleton --batch 128 --compile]`: the fine-tuning worker's
// throughput (ONNX-graph module vs the same network in native PyTorch; CPU and CUDA when present).
// The work is all in bench/worker_gpu.py, which also runs alone on a GPU box without Node.
import { spawnSync } from 'node:child_process';
import { testPython } from '../test/helpers/python';

const r = spawnSync(testPython(), ['bench/worker_gpu.py', ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(r.status ?? 1);
