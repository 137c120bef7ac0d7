// Spectrum pictures for the Layers tree: a 16×16 sparkline icon and a larger chart for the
// tooltip, as SVG files (tree icons and Markdown images need URIs, not inline markup), one
// light and one dark variant coloured like VS Code's `charts.*` theme colours.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../../core/fs/atomicWrite';

type Variant = 'light' | 'dark';

// VS Code's default charts.blue / charts.orange / foreground per theme kind.
const palette: Record<Variant, { line: string; energy: string; axis: string }> = {
  light: { line: '#1a85ff', energy: '#d18616', axis: '#616161' },
  dark: { line: '#3794ff', energy: '#d18616', axis: '#cccccc' },
};

/** log10(σ) scaled to [0, 1] (1 = σ₁); zeros clamp to the smallest positive value. */
function logShape(sv: ArrayLike<number>, points: number): number[] {
  const n = sv.length;
  if (n === 0) return [];
  const top = sv[0]!;
  let floor = top;
  for (let i = 0; i < n; i++) if (sv[i]! > 0 && sv[i]! < floor) floor = sv[i]!;
  const hi = Math.log10(top > 0 ? top : 1);
  const lo = Math.log10(floor > 0 ? floor : 1);
  const span = hi - lo || 1;
  const out: number[] = [];
  const count = Math.min(points, n);
  for (let j = 0; j < count; j++) {
    const i = count === 1 ? 0 : Math.round((j * (n - 1)) / (count - 1));
    const v = sv[i]! > 0 ? Math.log10(sv[i]!) : lo;
    out.push((v - lo) / span);
  }
  return out;
}

function polyline(ys: number[], x0: number, y0: number, w: number, h: number): string {
  if (ys.length === 1) return `${x0},${y0 + h * (1 - ys[0]!)} ${x0 + w},${y0 + h * (1 - ys[0]!)}`;
  return ys.map((y, i) => `${(x0 + (w * i) / (ys.length - 1)).toFixed(2)},${(y0 + h * (1 - y)).toFixed(2)}`).join(' ');
}

export function sparklineSvg(sv: ArrayLike<number>, variant: Variant): string {
  const c = palette[variant];
  const pts = polyline(logShape(sv, 32), 1, 2, 14, 12);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16">`
    + `<polyline points="${pts}" fill="none" stroke="${c.line}" stroke-width="1.4" stroke-linejoin="round"/></svg>`;
}

/** σ (log scale, blue) with cumulative energy (orange) and the 95 % rank as a dashed line. */
export function spectrumChartSvg(sv: ArrayLike<number>, rank95: number | undefined, variant: Variant): string {
  const c = palette[variant];
  const w = 280;
  const h = 90;
  const sigma = polyline(logShape(sv, 140), 4, 4, w - 8, h - 8);
  let total = 0;
  for (let i = 0; i < sv.length; i++) total += sv[i]! * sv[i]!;
  const energy: number[] = [];
  const n = sv.length;
  const count = Math.min(140, n);
  let acc = 0;
  let next = 0;
  for (let i = 0; i < n && next < count; i++) {
    acc += sv[i]! * sv[i]!;
    const at = count === 1 ? 0 : Math.round((next * (n - 1)) / (count - 1));
    if (i === at) {
      energy.push(total > 0 ? acc / total : 0);
      next++;
    }
  }
  const cut = rank95 !== undefined && n > 1
    ? `<line x1="${(4 + ((w - 8) * (rank95 - 1)) / (n - 1)).toFixed(1)}" y1="2" x2="${(4 + ((w - 8) * (rank95 - 1)) / (n - 1)).toFixed(1)}" y2="${h - 2}" stroke="${c.axis}" stroke-dasharray="3 2" stroke-width="1"/>`
    : '';
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">`
    + `<rect x="0.5" y="0.5" width="${w - 1}" height="${h - 1}" fill="none" stroke="${c.axis}" stroke-opacity="0.4"/>`
    + cut
    + `<polyline points="${polyline(energy, 4, 4, w - 8, h - 8)}" fill="none" stroke="${c.energy}" stroke-width="1.2"/>`
    + `<polyline points="${sigma}" fill="none" stroke="${c.line}" stroke-width="1.6"/></svg>`;
}

/**
 * Writes (once per spectrum hash) the icon and chart variants into `dir`, returning their paths.
 * Files are content-addressed by the weight hash, so an unchanged layer reuses them across sessions.
 */
export function spectrumImages(dir: string, hash: string, sv: ArrayLike<number>, rank95: number | undefined) {
  const key = hash.slice(0, 24);
  const files = {
    icon: { light: join(dir, `${key}-icon-light.svg`), dark: join(dir, `${key}-icon-dark.svg`) },
    chart: { light: join(dir, `${key}-chart-light.svg`), dark: join(dir, `${key}-chart-dark.svg`) },
  };
  const write = (path: string, svg: string) => {
    if (existsSync(path)) return;
    writeFileAtomicSync(path, svg, { createFolder: true, durable: false });
  };
  for (const v of ['light', 'dark'] as const) {
    write(files.icon[v], sparklineSvg(sv, v));
    write(files.chart[v], spectrumChartSvg(sv, rank95, v));
  }
  return files;
}
