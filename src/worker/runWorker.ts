// One fine-tuning job in the worker process, shared by finetune() (an ONNX graph) and
// finetuneModule() (the user's own nn.Module): start the worker, say hello to the caller, run
// the config to its `done` (cancel through the signal), and always close the process.
import { FinetuneWorker, defaultPython } from './client';
import type { FinetuneHandlers, WorkerStart } from './finetune';
import type { DoneMessage, FinetuneConfig, HelloMessage, ModuleFinetuneConfig } from './protocol';

export async function runWorker(config: FinetuneConfig | ModuleFinetuneConfig, start: WorkerStart = {}, handlers: FinetuneHandlers = {}): Promise<{ done: DoneMessage; hello: HelloMessage }> {
  const { signal } = handlers;
  const worker = await FinetuneWorker.launch({
    python: start.python ?? defaultPython(), helloTimeoutMs: start.helloTimeoutMs, cancelGraceMs: start.cancelGraceMs,
    env: start.env, nproc: start.nproc, gpus: start.gpus, onStderr: handlers.onStderr,
  }, signal);
  handlers.onMessage?.(worker.hello);
  handlers.onWorker?.(worker);
  try {
    return { done: await worker.run(config, { signal, onMessage: handlers.onMessage }), hello: worker.hello };
  } finally {
    await worker.dispose();
  }
}
