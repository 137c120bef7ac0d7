// Model overview (the read-only custom editor for .onnx) ⇄ extension host.
//
// The host parses the model (core `openModel`) and sends only the summary the view shows — never
// tensors. Layers with most to gain need spectra, which arrive later (DidUpdateGains).
import { command, is, notification } from '../shared/ipc';

const scope = 'overview';

export interface OverviewSummary {
  fileName: string;
  fileSize: number;
  /** 'onnx', or a state-dict format (no graph: irVersion 0, no opsets, inputs or outputs). */
  format: 'onnx' | 'pytorch' | 'safetensors';
  irVersion: number;
  /** e.g. ["ai.onnx 17"]. */
  opsets: string[];
  producer: string;
  inputs: { name: string; dtype: string; shape: string }[];
  outputs: { name: string; dtype: string; shape: string }[];
  totalParams: number;
  factorizableParams: number;
  layerCount: number;
  /** Layers already factorized by Rankscope, and the params they had before. */
  compressedCount: number;
  originalParams?: number;
}

export interface KindRow {
  /** Layer op (MatMul, Gemm, Conv, Gather) or "other" for parameters outside layers. */
  kind: string;
  count: number;
  params: number;
}

export interface GainRow {
  layer: string;
  shape: [number, number];
  params: number;
  /** Rank keeping 95 % energy, and the parameters saved by factorizing at it (≤ 0: no gain). */
  rank95: number;
  saved95: number;
}

// ---------- host → webview ----------

export const DidLoadNotification = notification<{ summary: OverviewSummary; kinds: KindRow[] }>(scope, 'didLoad');

/** Gains as spectra come in (sorted by `saved95`, descending, at most 20); `pending` layers left. */
export const DidUpdateGainsNotification = notification<{ gains: GainRow[]; pending: number }>(scope, 'didUpdateGains');

/** The file could not be opened: shown in place of the overview. */
export const DidFailNotification = notification<{ message: string; hint?: string }>(scope, 'didFail');

// ---------- webview → host ----------

const layer = is.object({ layer: is.string({ max: 4096 }) });
/** Focus the layer in the Layers tree (opening the model there first if needed). */
export const ShowInLayersCommand = command(scope, 'showInLayers', layer);
export const ShowSpectrumCommand = command(scope, 'showSpectrum', layer);

// ---------- state ----------

export interface OverviewState {
  version: 1;
  summary: OverviewSummary | null;
  kinds: KindRow[];
  gains: GainRow[];
  pending: number;
}
