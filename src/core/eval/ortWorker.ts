// Worker thread that owns ONNX Runtime sessions, so inference never blocks the caller's thread
// (the extension host, the CLI's progress output). Protocol: runnerProtocol.ts. Timing runs
// here too, so latency figures contain session.run and nothing of the message passing.
import { parentPort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { float16ToFloat32 } from '../model/float16';
import { GramAccumulator } from './gramAccumulator';
import type { FromWorker, ToWorker, WireTensor } from './runnerProtocol';

// ONNX Runtime's native logger writes straight to the process's stderr (coloured, timestamped,
// unasked for: "Removing initializer …"). Only fatal lines may pass; every error that matters
// comes back as the rejected call's message and reaches the user through RankscopeError.
const QUIET = 4;
ort.env.logLevel = 'fatal';
const runOptions: ort.InferenceSession.RunOptions = { logSeverityLevel: QUIET };

const sessions = new Map<number, ort.InferenceSession>();
/** Per session: the calibration Grams being folded, by spec id. */
const grams = new Map<number, Map<number, GramAccumulator>>();
let nextSession = 1;
// One message at a time: ORT parallelises inside a run; overlapping runs would skew timings.
let queue: Promise<void> = Promise.resolve();
// Set to 1 by the caller's thread on cancel. Checked between runs: a native session.run cannot be
// interrupted, and terminating the thread under it aborts the whole process (Napi::Error).
let cancelFlag: Int32Array<ArrayBufferLike> = new Int32Array(1);
const isCancelled = () => Atomics.load(cancelFlag, 0) !== 0;

parentPort!.on('message', (msg: ToWorker) => {
  if (msg.type === 'init') {
    cancelFlag = new Int32Array(msg.cancelFlag);
    return;
  }
  queue = queue.then(() => handle(msg));
});

async function handle(msg: ToWorker): Promise<void> {
  try {
    if (msg.type === 'shutdown') {
      for (const session of sessions.values()) await session.release();
      sessions.clear();
      parentPort!.close();
      return;
    }
    if (isCancelled()) throw new Error('cancelled');
    switch (msg.type) {
      case 'open': {
        const options: ort.InferenceSession.SessionOptions = {
          executionProviders: [msg.ep],
          graphOptimizationLevel: 'all',
          logSeverityLevel: QUIET,
          ...(msg.intraOpThreads ? { intraOpNumThreads: msg.intraOpThreads } : {}),
        };
        const session = typeof msg.model === 'string'
          ? await ort.InferenceSession.create(msg.model, options)
          : await ort.InferenceSession.create(msg.model, options);
        const id = nextSession++;
        sessions.set(id, session);
        const describe = (m: readonly ort.InferenceSession.ValueMetadata[]) => m.map((v) => (
          v.isTensor ? { name: v.name, type: String(v.type), shape: [...v.shape] } : { name: v.name, type: 'non-tensor', shape: [] }));
        reply({ type: 'ok', id: msg.id, result: { session: id, inputs: describe(session.inputMetadata), outputs: describe(session.outputMetadata) } });
        return;
      }
      case 'run': {
        const session = need(msg.session);
        const outputs = await session.run(toFeeds(msg.feeds), runOptions);
        const result: Record<string, WireTensor> = {};
        const transfer: ArrayBuffer[] = [];
        for (const [name, t] of Object.entries(outputs)) {
          // Output memory may belong to ORT; copy into a buffer we can hand over.
          const data = (t.data as ArrayBufferView & { slice(): ArrayBufferView }).slice();
          result[name] = { type: t.type, dims: [...t.dims], data: data as WireTensor['data'] };
          transfer.push(data.buffer as ArrayBuffer);
          t.dispose();
        }
        reply({ type: 'ok', id: msg.id, result }, transfer);
        return;
      }
      case 'time': {
        const session = need(msg.session);
        const feeds = toFeeds(msg.feeds);
        for (let i = 0; i < msg.warmup && !isCancelled(); i++) await session.run(feeds, runOptions);
        const times: number[] = [];
        for (let i = 0; i < msg.runs && !isCancelled(); i++) {
          const t0 = performance.now();
          await session.run(feeds, runOptions);
          times.push(performance.now() - t0);
        }
        reply({ type: 'ok', id: msg.id, result: times });
        return;
      }
      case 'fold': {
        const session = need(msg.session);
        const feeds = toFeeds(msg.feeds);
        // Only the activations: graph inputs come from the feeds, the rest as requested outputs.
        const fetches = [...new Set(msg.specs.map((s) => s.output).filter((name) => !(name in feeds)))];
        const outputs = await session.run(feeds, fetches.length ? fetches : [session.outputNames[0]], runOptions);
        const accumulators = grams.get(msg.session) ?? grams.set(msg.session, new Map()).get(msg.session)!;
        const shapes: Record<number, number[]> = {};
        for (const spec of msg.specs) {
          const t = outputs[spec.output] ?? feeds[spec.output];
          let acc = accumulators.get(spec.id);
          if (!acc) accumulators.set(spec.id, (acc = new GramAccumulator(spec)));
          // float16 activations arrive as their bits.
          acc.add(t.dims, t.type === 'float16' ? Float32Array.from(t.data as Uint16Array, float16ToFloat32) : t.data as ArrayLike<number>);
          shapes[spec.id] = [...t.dims];
        }
        for (const t of Object.values(outputs)) t.dispose();
        reply({ type: 'ok', id: msg.id, result: shapes });
        return;
      }
      case 'takeGrams': {
        const folded = [...(grams.get(msg.session)?.values() ?? [])].map((a) => a.finish());
        grams.delete(msg.session);
        reply({ type: 'ok', id: msg.id, result: folded }, folded.flatMap((f) => f.groups.map((g) => g.buffer as ArrayBuffer)));
        return;
      }
      case 'close': {
        await sessions.get(msg.session)?.release();
        sessions.delete(msg.session);
        grams.delete(msg.session);
        reply({ type: 'ok', id: msg.id, result: null });
        return;
      }
    }
  } catch (e) {
    // The Gram folding says what was wrong with the data as CODE:message.
    const message = (e as Error)?.message ?? String(e);
    const coded = /^(NUMERIC|SHAPE_MISMATCH):([\s\S]*)$/.exec(message);
    reply(coded ? { type: 'error', id: msg.id, message: coded[2], code: coded[1] as 'NUMERIC' | 'SHAPE_MISMATCH' } : { type: 'error', id: msg.id, message });
  }
}

function need(id: number): ort.InferenceSession {
  const s = sessions.get(id);
  if (!s) throw new Error(`session ${id} is closed`);
  return s;
}

function toFeeds(feeds: Record<string, WireTensor>): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) out[name] = new ort.Tensor(t.type as ort.Tensor.Type, t.data as never, t.dims);
  return out;
}

function reply(msg: FromWorker, transfer: ArrayBuffer[] = []): void {
  parentPort!.postMessage(msg, transfer);
}
