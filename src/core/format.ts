// Numbers as every UI shows them (CLI tables, the tree, status bar, notifications, webviews):
// `768×3072`, `2.36M`, `2,359,296`, `1.5 MiB`, `−34 %`. Pure and browser-safe (the webview
// bundles import it): no Node modules, no imports at all.

/** Compact, three significant digits: 2359296 → "2.36M", 412 → "412", 12_300 → "12.3K". */
export function formatCount(n: number): string {
  const units: [number, string][] = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'K']];
  for (const [size, suffix] of units) {
    if (Math.abs(n) >= size) return `${trim3(n / size)}${suffix}`;
  }
  return String(Math.round(n));
}

/** Exact, with thousands separators: 2359296 → "2,359,296" (CLI tables and reports). */
export function formatInteger(n: number): string {
  return n.toLocaleString('en-US');
}

function trim3(x: number): string {
  const digits = Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : 2;
  // Strip zeros only after a decimal point: 400 stays "400", 2.50 → "2.5".
  return x.toFixed(digits).replace(/\.0+$|(\.\d*[1-9])0+$/, '$1');
}

export function formatShape(shape: readonly number[]): string {
  return shape.join('×');
}

/** Binary units, three significant digits: 1536 → "1.5 KiB". */
export function formatBytes(n: number): string {
  const units: [number, string][] = [[2 ** 40, 'TiB'], [2 ** 30, 'GiB'], [2 ** 20, 'MiB'], [2 ** 10, 'KiB']];
  for (const [size, suffix] of units) if (n >= size) return `${trim3(n / size)} ${suffix}`;
  return `${n} B`;
}

/** Saved fraction as "−34 %" (U+2212), "0 %" when nothing is saved. */
export function formatSaved(before: number, after: number): string {
  if (before <= 0 || after >= before) return '0 %';
  return `−${Math.round((100 * (before - after)) / before)} %`;
}

export function formatPercent(fraction: number, digits = 1): string {
  return `${(100 * fraction).toFixed(digits)} %`;
}

/**
 * Fine-tuning progress in the worker's one convention (src/worker/protocol.ts): `epoch` is the
 * running epoch's 1-based number, `stepsDone` counts the steps done of all `totalSteps`; shown as
 * given, never shifted: "epoch 2 / 3 · step 40 / 96". The CLI, the notification and the fine-tune
 * view all print progress through this.
 */
export function formatEpochProgress(epoch: number, epochs: number, stepsDone?: number, totalSteps?: number): string {
  const steps = stepsDone !== undefined && totalSteps !== undefined ? ` · step ${stepsDone} / ${totalSteps}` : '';
  return `epoch ${epoch} / ${epochs}${steps}`;
}
