// Trade-off panel (a WebviewPanel) ⇄ extension host.
//
// Accuracy (ONNX Runtime on the user's evaluation data) against parameters, file size or latency,
// one series per allocation (energy / uniform / sensitivity) and one for energy thresholds, per
// factorization method (plain SVD filled, whitened SVD hollow; a filter per method), the
// swept model as a marker (labelled "original" only when it is not already compressed), the
// Pareto front drawn over all points. During a sweep the host streams points in one by one with
// progress (and the sensitivity probes as a stage with its own count); the user can cancel.
// Every sweep is its own result set, kept (host storage, per model + data + spec) and selectable.
// Clicking a point asks for its plan; "Apply" writes that model.
import {
  command, is, noParams, notification, request,
} from '../shared/ipc';
import type { Allocation, SweepMethod } from '../../src/core/compress/budget';

const scope = 'tradeoff';

/** How a budget is spread over layers (compress `makePlan` allocations). */
/** How the factors were made: plain SVD of W, or whitened SVD (W·S from a calibration pass). */
export type { Allocation, SweepMethod } from '../../src/core/compress/budget';

export interface TradeoffPoint {
  /** Stable id chosen by the host (used in GetPlan / ApplyPoint). */
  id: string;
  allocation: Allocation;
  /** Short label, e.g. "budget 50 %" or "energy 95 %". Untrusted-safe: rendered as text. */
  label: string;
  /** Total parameters of the compressed model. */
  params: number;
  /** Bytes of the written (or would-be-written) ONNX file. */
  fileSize: number;
  /** Mean latency per batch in ms (measureLatency); absent when not measured. */
  latencyMs?: number;
  /** Multiply-accumulates per sample of the weight layers (core/eval/macs.ts); absent when the shapes could not be measured. */
  macs?: number;
  /** Top-1 accuracy in [0, 1]. */
  accuracy: number;
  /** 'energy': an energy threshold (every layer keeps that share), not a budget allocation. Absent = 'budget'. */
  kind?: 'budget' | 'energy';
  /** The factorization method. Absent = 'svd' (plain SVD; sets kept before methods existed). */
  method?: SweepMethod;
}

/** The model the sweep compressed: the baseline marker. */
export interface OriginalModel {
  params: number;
  fileSize: number;
  latencyMs?: number;
  macs?: number;
  accuracy: number;
  name: string;
  /** Layers the swept model already had factorized: > 0 means it is not the original. */
  compressedLayers?: number;
}

export interface SweepProgress {
  done: number;
  total: number;
  /** What runs now, e.g. "uniform 30 % — evaluating 512 samples". */
  message: string;
  /** A stage inside the sweep with its own count (the sensitivity probes), while it runs. */
  stage?: { label: string; done: number; total: number };
}

/** One kept sweep (result set) as the selector lists it. */
export interface SweepSummary {
  id: string;
  /** Model and data, e.g. "model.onnx on data.npz". */
  title: string;
  /** The levels, energies and allocations, e.g. "−30/50/70 % × energy, uniform; energy 90/95 %". */
  spec: string;
  /** ms since the epoch. */
  startedAt: number;
  status: 'running' | 'completed' | 'cancelled' | 'failed';
  points: number;
}

// ---------- host → webview ----------

/** Replaces everything (a finished sweep loaded from cache, or a new sweep starting: points []). */
export const DidSetPointsNotification = notification<{
  points: TradeoffPoint[];
  original: OriginalModel | null;
  /** Caption: model and dataset. */
  title: string;
  /** The result set shown (SweepSummary.id). */
  sweepId?: string;
  /** How the sensitivity probes ran (calibration subset, probes measured), when they ran. */
  note?: string;
}>(scope, 'didSetPoints');

/** The kept sweeps changed (one started, finished, or was loaded); `shown` is the one displayed. */
export const DidChangeSweepsNotification = notification<{ sweeps: SweepSummary[]; shown: string | null }>(scope, 'didChangeSweeps');

/** One point streamed in while a sweep runs. */
export const DidAddPointNotification = notification<{ point: TradeoffPoint }>(scope, 'didAddPoint');

/** Sweep progress; null when no sweep runs. */
export const DidChangeProgressNotification = notification<{ progress: SweepProgress | null }>(scope, 'didChangeProgress');

/** The sweep ended (completed, cancelled, or failed with a message for the user). */
export const DidFinishSweepNotification = notification<{ outcome: 'completed' | 'cancelled' | 'failed'; error?: string }>(
  scope, 'didFinishSweep',
);

// ---------- webview → host ----------

/** "Run sweep" (the host asks for what it lacks — eval data, budgets — then streams points). */
export const RunSweepCommand = command(scope, 'runSweep', noParams);
export const CancelSweepCommand = command(scope, 'cancelSweep', noParams);
/** Show another kept sweep (the host answers with DidSetPoints). */
export const SelectSweepCommand = command(scope, 'selectSweep', is.object({ id: is.string({ max: 200 }) }));

export interface PlanLayerView {
  layer: string;
  shape: [number, number];
  /** Chosen rank; absent when the layer is kept dense. */
  rank?: number;
  paramsBefore: number;
  paramsAfter: number;
  energyKept: number;
  /** Why it was kept dense (would not save parameters, not factorizable, …). */
  skipped?: string;
}
export interface PlanView {
  pointId: string;
  label: string;
  allocation: Allocation;
  /** Absent = 'svd'. */
  method?: SweepMethod;
  paramsBefore: number;
  paramsAfter: number;
  layers: PlanLayerView[];
}
export const GetPlanRequest = request<{ pointId: string }, PlanView>(
  scope, 'getPlan', is.object({ pointId: is.string({ max: 200 }) }),
);

/** "Apply": writes the compressed model of that point; reply: the written file. */
export const ApplyPointRequest = request<{ pointId: string }, { file: string }>(
  scope, 'applyPoint', is.object({ pointId: is.string({ max: 200 }) }),
);

// ---------- state ----------

export type XAxis = 'params' | 'fileSize' | 'latency' | 'macs';

/** Kept with `vscode.setState`; also what a WebviewPanelSerializer gets back after a reload. */
export interface TradeoffState {
  version: 1;
  title: string;
  points: TradeoffPoint[];
  original: OriginalModel | null;
  xAxis: XAxis;
  /** Series hidden by the user's legend toggles (series keys: an allocation or 'threshold', prefixed 'whitened:' for whitened points). */
  hidden: string[];
  /** Methods the user filtered out (absent: none). */
  hiddenMethods?: SweepMethod[];
  selected: string | null;
  /** The result set shown and the kept ones (absent in state saved before sweeps were kept). */
  sweepId?: string;
  sweeps?: SweepSummary[];
  note?: string;
  /** Accuracy axis: 'data' (default) zooms to the points, 'full' shows 0–100 %. */
  yRange?: 'data' | 'full';
  /** Logarithmic x axis. */
  xLog?: boolean;
}
