// Worker-thread entry (bundled as dist/spectra-worker.js): singular values of the matrices it is
// sent, one job at a time, and their metrics (the power-law fit is not free: off the caller's
// thread too). The matrices arrive as transferred buffers and the results go back the same way.
import { parentPort } from 'node:worker_threads';
import { isRankscopeError } from '../errors';
import { spectrumMetrics } from './metrics';
import { mergeDescending, singularValues } from './singularValues';
import type { SpectraJob, SpectraReply } from './spectra';

parentPort?.on('message', (job: SpectraJob) => {
  let reply: SpectraReply;
  try {
    const groups = job.matrices.map((m, g) =>
      singularValues(m.data, m.rows, m.cols, job.matrices.length > 1 ? `${job.label} (group ${g})` : job.label));
    reply = { id: job.id, ok: true, groups, metrics: spectrumMetrics(mergeDescending(groups), job.shape) };
  } catch (e) {
    reply = isRankscopeError(e)
      ? { id: job.id, ok: false, code: e.code, message: e.message, hint: e.hint }
      : { id: job.id, ok: false, message: String((e as Error)?.stack ?? e) };
  }
  const transfer = reply.ok ? reply.groups.map((g) => g.buffer as ArrayBuffer) : [];
  parentPort!.postMessage(reply, transfer);
});
