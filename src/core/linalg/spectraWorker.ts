// Worker-thread entry (bundled as dist/spectra-worker.js): singular values of the matrices it is
// sent, one job at a time, and their metrics (the power-law fit is not free: off the caller's
// thread too). The matrices arrive as transferred buffers and the results go back the same way.
import { storedShape } from '../model/matrix';
import { spectrumMetrics } from './metrics';
import { mergeDescending, singularValues } from './singularValues';
import type { SpectraJob, SpectraSuccess } from './spectra';
import { servePoolJobs } from './workerPool';

servePoolJobs<SpectraJob, SpectraSuccess>((job) => {
  const groups = job.matrices.map((m, g) =>
    singularValues(m.data, ...storedShape(m), job.matrices.length > 1 ? `${job.label} (group ${g})` : job.label));
  return { id: job.id, ok: true, groups, metrics: spectrumMetrics(mergeDescending(groups), job.shape) };
}, (reply) => reply.groups.map((g) => g.buffer as ArrayBuffer));
