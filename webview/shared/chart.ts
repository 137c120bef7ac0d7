// Chart.js set up once for all views: only the pieces we use are registered (smaller bundles),
// colours come from the VS Code theme (`--vscode-charts-*`) and follow theme switches, and an
// SVG export serializes what Chart.js laid out (scales, ticks, drawn points) as vector shapes.
import {
  Chart, LineController, ScatterController, BarController, LineElement, PointElement, BarElement,
  LinearScale, LogarithmicScale, CategoryScale, Tooltip, Legend, Filler,
  type Scale,
} from 'chart.js';

Chart.register(
  LineController, ScatterController, BarController, LineElement, PointElement, BarElement,
  LinearScale, LogarithmicScale, CategoryScale, Tooltip, Legend, Filler,
);

export { Chart };

export interface ThemeColors {
  foreground: string;
  muted: string;
  grid: string;
  background: string;
  font: string;
  /** Series palette in order: blue, orange, purple, green, red, yellow. */
  series: string[];
  /** The cut line / selection accent. */
  accent: string;
  highContrast: boolean;
}

function cssVar(name: string, fallback: string): string {
  return getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
}

export function themeColors(): ThemeColors {
  const highContrast = document.body.classList.contains('vscode-high-contrast')
    || document.body.classList.contains('vscode-high-contrast-light');
  const foreground = cssVar('--vscode-editor-foreground', cssVar('--vscode-foreground', '#cccccc'));
  return {
    foreground,
    muted: cssVar('--vscode-descriptionForeground', foreground),
    // In high contrast the grid must be visible against the background: use the contrast border.
    grid: highContrast ? cssVar('--vscode-contrastBorder', foreground) : cssVar('--vscode-charts-lines', 'rgba(128,128,128,0.35)'),
    background: cssVar('--vscode-sideBar-background', cssVar('--vscode-editor-background', '#1e1e1e')),
    font: cssVar('--vscode-font-family', 'sans-serif'),
    series: ['blue', 'orange', 'purple', 'green', 'red', 'yellow'].map((c, i) =>
      cssVar(`--vscode-charts-${c}`, ['#3794ff', '#d18616', '#b180d7', '#89d185', '#f14c4c', '#cca700'][i]!)),
    accent: cssVar('--vscode-focusBorder', '#007fd4'),
    highContrast,
  };
}

/** Applies the theme to Chart.js defaults; call before creating charts. */
export function applyThemeDefaults(c: ThemeColors): void {
  Chart.defaults.color = c.foreground;
  Chart.defaults.borderColor = c.grid;
  Chart.defaults.font.family = c.font;
  Chart.defaults.font.size = 11;
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
}

/**
 * Writes the theme's colours into a chart's own options. Chart.js copies the defaults it sees when
 * a chart is created into that chart's scale options (ticks, title, grid and border colours), so
 * new defaults alone leave the axes of an existing chart in the previous theme's colours.
 */
export function applyThemeToChart(chart: AnyChart, c: ThemeColors): void {
  for (const scale of Object.values(chart.options.scales ?? {}) as Record<string, Record<string, unknown> | undefined>[]) {
    if (!scale) continue;
    for (const [part, key, color] of [['ticks', 'color', c.foreground], ['title', 'color', c.foreground], ['grid', 'color', c.grid], ['border', 'color', c.grid]] as const) {
      if (scale[part]) scale[part][key] = color;
    }
  }
  const legend = chart.options.plugins?.legend as { labels?: { color?: string } } | undefined;
  if (legend?.labels) legend.labels.color = c.foreground;
}

/**
 * Calls `fn` with fresh colours whenever VS Code switches theme. VS Code's webview host swaps the
 * body's theme class and the `--vscode-*` variables in one task, so the observer (a microtask)
 * reads the new variables. Every live chart gets the new colours before `fn` redraws it.
 */
export function onThemeChange(fn: (c: ThemeColors) => void): void {
  new MutationObserver(() => {
    const c = themeColors();
    applyThemeDefaults(c);
    for (const chart of Object.values(Chart.instances) as AnyChart[]) applyThemeToChart(chart, c);
    fn(c);
  }).observe(document.body, { attributes: true, attributeFilter: ['class', 'data-vscode-theme-id'] });
}

// Chart's generics are invariant through its plugin hooks, so helpers that serve every chart
// type take the loosest instance type.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyChart = Chart<any, any, any>;

/** Number of data points Chart.js laid out in visible datasets (what the user sees). */
export function drawnPoints(chart: AnyChart, filter: (datasetIndex: number) => boolean = () => true): number {
  let n = 0;
  chart.data.datasets.forEach((_, i) => {
    if (filter(i) && chart.isDatasetVisible(i)) n += chart.getDatasetMeta(i).data.length;
  });
  return n;
}

/** The chart as a PNG (base64, no data: prefix) on the theme background, not transparent. */
export function chartPng(chart: AnyChart, background: string): string {
  const src = chart.canvas;
  const out = document.createElement('canvas');
  out.width = src.width;
  out.height = src.height;
  const ctx = out.getContext('2d')!;
  ctx.fillStyle = background;
  ctx.fillRect(0, 0, out.width, out.height);
  ctx.drawImage(src, 0, 0);
  return out.toDataURL('image/png').replace(/^data:image\/png;base64,/, '');
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * The chart as SVG: Chart.js has already computed the layout, so this only serializes it —
 * axis ticks and labels from each scale, every visible dataset as a polyline (lines) or circles
 * (scatter) at the pixel positions Chart.js drew, and the legend as text.
 */
export function chartSvg(chart: AnyChart, colors: ThemeColors, title: string): string {
  const w = chart.width;
  const hgt = chart.height;
  const area = chart.chartArea;
  const parts: string[] = [];
  parts.push(`<rect width="${w}" height="${hgt}" fill="${esc(colors.background)}"/>`);
  for (const scale of Object.values(chart.scales) as Scale[]) {
    if (!(scale.options as { display?: boolean }).display) continue;
    const horizontal = scale.isHorizontal();
    scale.ticks.forEach((tick, i) => {
      const p = scale.getPixelForTick(i);
      const label = Array.isArray(tick.label) ? tick.label.join(' ') : String(tick.label ?? '');
      if (horizontal) {
        parts.push(`<line x1="${p}" y1="${area.top}" x2="${p}" y2="${area.bottom}" stroke="${esc(colors.grid)}" stroke-width="0.5"/>`);
        parts.push(`<text x="${p}" y="${area.bottom + 14}" text-anchor="middle">${esc(label)}</text>`);
      } else {
        const left = scale.position === 'left';
        if (left) parts.push(`<line x1="${area.left}" y1="${p}" x2="${area.right}" y2="${p}" stroke="${esc(colors.grid)}" stroke-width="0.5"/>`);
        parts.push(`<text x="${left ? area.left - 4 : area.right + 4}" y="${p + 4}" text-anchor="${left ? 'end' : 'start'}">${esc(label)}</text>`);
      }
    });
    const titleText = (scale.options as { title?: { display?: boolean; text?: string } }).title;
    if (titleText?.display && titleText.text) {
      parts.push(horizontal
        ? `<text x="${(area.left + area.right) / 2}" y="${hgt - 4}" text-anchor="middle">${esc(titleText.text)}</text>`
        : `<text transform="translate(${scale.position === 'left' ? 12 : w - 4},${(area.top + area.bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(titleText.text)}</text>`);
    }
  }
  chart.data.datasets.forEach((ds, i) => {
    if (!chart.isDatasetVisible(i)) return;
    const meta = chart.getDatasetMeta(i);
    const color = String((ds as { borderColor?: unknown }).borderColor ?? colors.foreground);
    const pts = meta.data.map((el) => ({ x: (el as unknown as { x: number }).x, y: (el as unknown as { y: number }).y }))
      .filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
    const dash = (ds as { borderDash?: number[] }).borderDash;
    if (meta.type === 'line' && (ds as { showLine?: boolean }).showLine !== false) {
      parts.push(`<polyline fill="none" stroke="${esc(color)}" stroke-width="1.5"${dash?.length ? ` stroke-dasharray="${dash.join(' ')}"` : ''} points="${pts.map((p) => `${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ')}"/>`);
    } else {
      const fill = String((ds as { backgroundColor?: unknown }).backgroundColor ?? color);
      for (const p of pts) parts.push(`<circle cx="${p.x.toFixed(1)}" cy="${p.y.toFixed(1)}" r="3" fill="${esc(fill)}" stroke="${esc(color)}"/>`);
    }
    parts.push(`<text x="${area.left + 8}" y="${area.top + 14 + 14 * i}" fill="${esc(color)}">${esc(String(ds.label ?? ''))}</text>`);
  });
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${hgt}" viewBox="0 0 ${w} ${hgt}" font-family="${esc(colors.font)}" font-size="11" fill="${esc(colors.foreground)}">
<title>${esc(title)}</title>
${parts.join('\n')}
</svg>
`;
}

/** Base64 of a UTF-8 string (for sending text files through the same export request as PNG). */
export function utf8ToBase64(s: string): string {
  const bytes = new TextEncoder().encode(s);
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}
