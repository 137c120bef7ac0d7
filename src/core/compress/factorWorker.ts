// Worker-thread entry (bundled as dist/factor-worker.js): top-k balanced factors of the matrices
// it is sent, one job at a time; buffers are transferred both ways.
import { parentPort } from 'node:worker_threads';
import { isRankscopeError } from '../errors';
import { factorize, frobeniusSquared } from './factor';
import type { FactorJob, FactorReply } from './pool';

parentPort?.on('message', (job: FactorJob) => {
  let reply: FactorReply;
  try {
    const groups = job.matrices.map((m, g) => {
      const f = factorize(m.data, m.rows, m.cols, job.k, job.matrices.length > 1 ? `${job.label} (group ${g})` : job.label);
      return { ...f, total: frobeniusSquared(m.data) };
    });
    reply = { id: job.id, ok: true, groups };
  } catch (e) {
    reply = isRankscopeError(e)
      ? { id: job.id, ok: false, code: e.code, message: e.message, hint: e.hint }
      : { id: job.id, ok: false, message: String((e as Error)?.stack ?? e) };
  }
  const transfer = reply.ok ? reply.groups.flatMap((g) => [g.a.buffer as ArrayBuffer, g.b.buffer as ArrayBuffer]) : [];
  parentPort!.postMessage(reply, transfer);
});
