// Spectrum side panel (a WebviewView in the Rankscope container) ⇄ extension host.
//
// The host sends the spectra to draw (one focused layer plus overlays); the webview draws σ on a
// log axis with the cumulative-energy curve, lets the user drag a cut line to pick the rank of the
// FOCUSED layer (parameters saved and energy kept are computed live in the webview from the σ it
// holds, no round trip), and asks the host to compress at that rank or to save an export.
import {
  command, is, noParams, notification, request,
} from '../shared/ipc';

const scope = 'spectrum';

/** One layer's spectrum as the panel needs it. Names come from untrusted files: render as text only. */
export interface SpectrumSeries {
  /** Layer name (module path), the key of the series. */
  layer: string;
  /** Matrix view [out, in] (types.ts Layer.shape). */
  shape: [number, number];
  /** Conv groups (1 for linears). Each group is a (out/groups)×in matrix factorized on its own. */
  groups: number;
  /** All singular values, descending (for grouped convs: all groups merged, descending). */
  singularValues: number[];
  /** Per-group σ (descending each), present when groups > 1; energy/params use these. */
  groupSingularValues?: number[][];
  /** Weight parameters (out·in) and bias parameters (kept as is by compression). */
  params: number;
  /** Ranks keeping 90/95/99 % of the energy (spectrumMetrics.energyRank). */
  energyRank: { '0.9': number; '0.95': number; '0.99': number };
  stableRank: number;
  /** Already compressed: the rank it was compressed at (σ are then of A·B). */
  compressedRank?: number;
  /** Whether compression is possible (Layer.factorizable) and why not. */
  factorizable: boolean;
  reason?: string;
}

// ---------- host → webview ----------

export interface DidSetSeriesParams {
  /** Replaces what is drawn. The first entry is the focused layer unless `focus` names another. */
  series: SpectrumSeries[];
  focus?: string;
  /** Initial cut for the focused layer; default: its 95 % energy rank. */
  rank?: number;
  /** The model file these layers belong to (shown as a caption). */
  modelName?: string;
}
export const DidSetSeriesNotification = notification<DidSetSeriesParams>(scope, 'didSetSeries');

/** Adds (or replaces, by layer name) overlay series without changing the focus or the cut. */
export const DidAddSeriesNotification = notification<{ series: SpectrumSeries[] }>(scope, 'didAddSeries');

/** While spectra are computed; `message` null clears it. */
export const DidChangeBusyNotification = notification<{ message: string | null }>(scope, 'didChangeBusy');

// ---------- webview → host ----------

const layerName = is.string({ max: 4096 });

/** The user moved the cut (debounced): lets the host keep its own copy (e.g. for the tree/tooltips). */
export const DidChangeRankCommand = command(scope, 'didChangeRank', is.object({
  layer: layerName,
  rank: is.number({ integer: true, min: 1 }),
}));

/** "Add layer…": the host shows a QuickPick of layers and answers with DidAddSeries. */
export const PickOverlayCommand = command(scope, 'pickOverlay', noParams);

/** "Show in Layers" for a series. */
export const RevealLayerCommand = command(scope, 'revealLayer', is.object({ layer: layerName }));

export interface CompressAtRankResult {
  /** The written model file (absolute path) — shown to the user; the host opens it in the tree. */
  file: string;
  paramsBefore: number;
  paramsAfter: number;
  energyKept: number;
}
/** "Compress at this rank": writes a new model next to the original (never over it). */
export const CompressAtRankRequest = request<{ layer: string; rank: number }, CompressAtRankResult>(
  scope, 'compressAtRank', is.object({ layer: layerName, rank: is.number({ integer: true, min: 1 }) }),
);

export type ExportFormat = 'png' | 'svg' | 'csv';
/**
 * Export: the webview renders the bytes (PNG from the chart canvas, SVG and CSV as text); the host
 * asks where to save and writes them. Reply: the saved path, or null when the user cancelled.
 */
export const ExportRequest = request<
  { format: ExportFormat; suggestedName: string; contents: string; encoding: 'utf8' | 'base64' },
  { saved: string | null }
>(scope, 'export', is.object({
  format: is.oneOf('png', 'svg', 'csv'),
  suggestedName: is.string({ max: 255 }),
  // 32 MiB of text is far beyond any chart or CSV we produce; refuse anything larger.
  contents: is.string({ max: 32 * 1024 * 1024 }),
  encoding: is.oneOf('utf8', 'base64'),
}));

// ---------- state ----------

/**
 * What `vscode.setState` keeps so a hidden/restored panel comes back as it was: the series on
 * screen, the focused layer and its cut, the y-scale. (Stored in the webview; the host does not
 * need to resend after a reload, but sends fresh data when the user picks another layer.)
 */
export interface SpectrumState {
  version: 1;
  series: SpectrumSeries[];
  focus: string | null;
  rank: number | null;
  modelName: string | null;
  logScale: boolean;
  /** Normalize σ by σ₁ so layers of different scale overlay meaningfully. */
  normalize: boolean;
}
