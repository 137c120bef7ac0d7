// Messages between OrtRunner (caller's thread) and ortWorker.ts (the ONNX Runtime thread).
import type { ActivationSpec, FoldedGram } from './gramAccumulator';
import type { NpyData } from './npy';

export type ExecutionProvider = 'cpu' | 'cuda';

/** A tensor crossing the thread boundary; `type` uses ONNX Runtime's names (float32, int64, bool…). */
export interface WireTensor {
  type: string;
  dims: number[];
  data: NpyData;
}

export interface TensorInfo {
  name: string;
  /** ONNX Runtime element type name, or 'non-tensor'. */
  type: string;
  /** Dimensions; strings are symbolic (batch), -1/absent dims unknown. */
  shape: (number | string)[];
}

export interface OpenedSession {
  session: number;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
}

export type ToWorker =
  | { type: 'open'; id: number; model: string | Uint8Array; ep: ExecutionProvider; intraOpThreads?: number }
  | { type: 'run'; id: number; session: number; feeds: Record<string, WireTensor> }
  | { type: 'time'; id: number; session: number; feeds: Record<string, WireTensor>; warmup: number; runs: number }
  | { type: 'close'; id: number; session: number }
  /** Calibration: run a batch and fold the named activations (outputs or feeds) into the session's input Grams. */
  | { type: 'fold'; id: number; session: number; feeds: Record<string, WireTensor>; specs: ActivationSpec[] }
  /** Calibration: the Grams folded so far (and forget them). */
  | { type: 'takeGrams'; id: number; session: number }
  /** Sent once, first: a shared Int32 flag the caller sets to 1 to cancel queued and timing runs. */
  | { type: 'init'; id: number; cancelFlag: SharedArrayBuffer }
  /** Release every session and end the thread once the run in progress (if any) has returned. */
  | { type: 'shutdown'; id: number };

export type FromWorker =
  | { type: 'ok'; id: number; result: unknown }
  | { type: 'error'; id: number; message: string; code?: 'NUMERIC' | 'SHAPE_MISMATCH' };

export type { ActivationSpec, FoldedGram };
