// Pool worker for ortGemm.test.ts: an endless chunked Gram through ONNX Runtime (each chunk a
// native run of ~50 ms), so the pool's abort finds it inside native code most of the time.
import { gramOrt } from '../../../src/core/linalg/ortGemm';
import { servePoolJobs } from '../../../src/core/linalg/workerPool';

servePoolJobs<{ id: number; matrices: []; rows: number }, { id: number; ok: true }>((job) => {
  const n = 1024;
  gramOrt(job.rows, n, (_r0, _rows, out) => out.fill(1), () => {}, 1024 * n);
  return { id: job.id, ok: true };
}, () => []);
