// Pool worker for ortGemm.test.ts: ONNX Runtime "cannot load" (a missing module), so the worker
// falls back; the reply says whether this worker gave the notice. Each job holds its worker a
// while, so both workers of the pool have looked before either ends.
import { ortGemmAvailable, reloadOrtGemmForTests } from '../../../src/core/linalg/ortGemm';
import { servePoolJobs } from '../../../src/core/linalg/workerPool';

servePoolJobs<{ id: number; matrices: [] }, { id: number; ok: true; available: boolean; noticed: boolean }>((job) => {
  let noticed = false;
  reloadOrtGemmForTests('rankscope-no-such-onnxruntime', () => (noticed = true));
  const available = ortGemmAvailable();
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
  return { id: job.id, ok: true, available, noticed };
}, () => []);
