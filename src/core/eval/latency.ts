// Latency per batch: warm-up runs, then N timed session.run calls inside the ONNX Runtime
// thread (no message passing in the figure). Original and compressed are timed by the same
// runner, interleaved in rounds, so both see the same machine load.
import { RankscopeError } from '../errors';
import type { OrtSession, WireTensor } from './runner';

export interface LatencyOptions {
  warmup?: number;
  runs?: number;
  /** compareLatency: alternate the sessions in this many rounds (default min(runs, 5); runs = one run each in turn). */
  rounds?: number;
}

export interface Latency {
  batchSize: number;
  runs: number;
  medianMs: number;
  p90Ms: number;
  meanMs: number;
  /** Samples per second at the median. */
  throughput: number;
}

export function summarize(times: number[], batchSize: number): Latency {
  const sorted = [...times].sort((a, b) => a - b);
  const n = sorted.length;
  const median = n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  const p90 = sorted[Math.max(0, Math.ceil(0.9 * n) - 1)];
  const mean = sorted.reduce((a, b) => a + b, 0) / n;
  return { batchSize, runs: n, medianMs: median, p90Ms: p90, meanMs: mean, throughput: (batchSize / median) * 1000 };
}

function check({ warmup = 3, runs = 20 }: LatencyOptions): { warmup: number; runs: number } {
  if (!(Number.isInteger(runs) && runs >= 1) || !(Number.isInteger(warmup) && warmup >= 0)) {
    throw new RankscopeError('BAD_ARGUMENT', `latency needs runs ≥ 1 and warmup ≥ 0 (integers); got runs ${runs}, warmup ${warmup}.`);
  }
  return { warmup, runs };
}

export async function measureLatency(session: OrtSession, feeds: Record<string, WireTensor>, options: LatencyOptions = {}): Promise<Latency> {
  const { warmup, runs } = check(options);
  const times = await session.time(feeds, warmup, runs);
  return summarize(times, Object.values(feeds)[0]?.dims[0] ?? 1);
}

/** Several sessions on the same batch, in alternating rounds of a few runs each. */
export async function compareLatency(sessions: OrtSession[], feeds: Record<string, WireTensor>, options: LatencyOptions = {}): Promise<Latency[]> {
  const { warmup, runs } = check(options);
  const rounds = Math.max(1, Math.min(runs, options.rounds ?? 5));
  const times = sessions.map(() => [] as number[]);
  for (const s of sessions) await s.time(feeds, warmup, 0);
  for (let r = 0; r < rounds; r++) {
    const share = Math.floor(runs / rounds) + (r < runs % rounds ? 1 : 0);
    for (let i = 0; i < sessions.length; i++) times[i].push(...(await sessions[i].time(feeds, 0, share)));
  }
  const batchSize = Object.values(feeds)[0]?.dims[0] ?? 1;
  return times.map((t) => summarize(t, batchSize));
}
