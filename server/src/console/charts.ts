/** Inline-SVG charts for the console: no library, nothing loaded from elsewhere. */
import { s } from './dom.js';

export interface Series {
  name: string;
  color: string;
  points: { x: number; y: number }[];
  /** Draw bars instead of a line. */
  bars?: boolean;
  dashed?: boolean;
}

export interface ChartOptions {
  series: Series[];
  /** Horizontal reference lines (e.g. the ε budget). */
  refs?: { y: number; label: string; color: string }[];
  yMin?: number;
  yMax?: number;
  xLabel?: string;
  yFormat?: (v: number) => string;
  empty?: string;
  testId?: string;
}

const W = 480;
const H = 220;
const M = { top: 14, right: 16, bottom: 34, left: 48 };

/** "Nice" tick values from at or below lo to at or above hi (Heckbert's labelling). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) hi = lo + 1;
  const raw = (hi - lo) / Math.max(1, count - 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= raw) ?? 10 * mag;
  const out: number[] = [];
  const top = Math.ceil(hi / step - 1e-9) * step;
  for (let v = Math.floor(lo / step) * step; v <= top + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** A tick value without float noise: 0.25, 1.5, 1200. */
function tickLabel(v: number): string {
  return String(Number(v.toPrecision(6)));
}

/** A line/bar chart over round numbers; points carry `data-x`/`data-y` and a tooltip. */
export function chart(o: ChartOptions): SVGSVGElement {
  const all = o.series.flatMap((se) => se.points);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', ...(o.testId ? { 'data-testid': o.testId } : {}) });
  if (all.length === 0) {
    svg.append(s('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'chart-empty' }, o.empty ?? 'no data yet'));
    return svg;
  }
  const fmt = o.yFormat ?? ((v: number) => String(v));
  const xs = all.map((p) => p.x);
  let xMin = Math.min(...xs);
  let xMax = Math.max(...xs);
  const anyBars = o.series.some((se) => se.bars);
  if (anyBars || xMin === xMax) {
    xMin -= 0.5;
    xMax += 0.5;
  }
  const ys = [...all.map((p) => p.y), ...(o.refs ?? []).map((r) => r.y)];
  let yLo = o.yMin ?? Math.min(...ys);
  let yHi = o.yMax ?? Math.max(...ys);
  if (o.yMin === undefined && anyBars) yLo = Math.min(0, yLo);
  if (yHi === yLo) {
    yHi += Math.abs(yHi) * 0.1 || 1;
    if (o.yMin === undefined) yLo -= Math.abs(yLo) * 0.1 || 0;
  }
  const ticks = niceTicks(yLo, yHi);
  yLo = Math.min(yLo, ticks[0]!);
  yHi = Math.max(yHi, ticks.at(-1)!);
  const px = (x: number) => M.left + ((x - xMin) / (xMax - xMin)) * (W - M.left - M.right);
  const py = (y: number) => H - M.bottom - ((y - yLo) / (yHi - yLo)) * (H - M.top - M.bottom);

  const grid = s('g', { class: 'grid' });
  for (const t of ticks) {
    grid.append(s('line', { x1: M.left, x2: W - M.right, y1: py(t), y2: py(t) }));
    grid.append(s('text', { x: M.left - 6, y: py(t) + 4, 'text-anchor': 'end', class: 'tick' }, tickLabel(t)));
  }
  const xTicks = [...new Set(xs)].sort((a, b) => a - b);
  const every = Math.ceil(xTicks.length / 10);
  xTicks.forEach((x, i) => {
    if (i % every === 0) grid.append(s('text', { x: px(x), y: H - M.bottom + 16, 'text-anchor': 'middle', class: 'tick' }, String(x)));
  });
  grid.append(s('line', { x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom, class: 'axis' }));
  if (o.xLabel) grid.append(s('text', { x: (M.left + W - M.right) / 2, y: H - 4, 'text-anchor': 'middle', class: 'axis-label' }, o.xLabel));
  svg.append(grid);

  for (const r of o.refs ?? []) {
    svg.append(s('line', { x1: M.left, x2: W - M.right, y1: py(r.y), y2: py(r.y), stroke: r.color, 'stroke-dasharray': '6 4', class: 'ref' }));
    svg.append(s('text', { x: W - M.right - 4, y: py(r.y) - 5, 'text-anchor': 'end', fill: r.color, class: 'ref-label' }, r.label));
  }

  const barSeries = o.series.filter((se) => se.bars);
  const slot = (W - M.left - M.right) / Math.max(1, xMax - xMin);
  const bw = Math.max(3, Math.min(28, (slot * 0.7) / Math.max(1, barSeries.length)));
  o.series.forEach((se) => {
    const g = s('g', { class: 'series', 'data-series': se.name });
    const pts = [...se.points].sort((a, b) => a.x - b.x);
    if (se.bars) {
      const k = barSeries.indexOf(se);
      for (const p of pts) {
        const x = px(p.x) - (bw * barSeries.length) / 2 + k * bw;
        const y0 = py(Math.max(yLo, 0));
        g.append(
          s('rect', { x, y: Math.min(py(p.y), y0), width: bw - 1, height: Math.abs(y0 - py(p.y)), fill: se.color, rx: 2, class: 'pt', 'data-x': p.x, 'data-y': p.y }, s('title', null, `${se.name} · round ${p.x}: ${fmt(p.y)}`)),
        );
      }
    } else {
      if (pts.length > 1) {
        g.append(s('polyline', { points: pts.map((p) => `${px(p.x)},${py(p.y)}`).join(' '), fill: 'none', stroke: se.color, 'stroke-width': 2.2, 'stroke-linejoin': 'round', ...(se.dashed ? { 'stroke-dasharray': '5 4' } : {}) }));
      }
      for (const p of pts) {
        g.append(s('circle', { cx: px(p.x), cy: py(p.y), r: 3.6, fill: '#fff', stroke: se.color, 'stroke-width': 2, class: 'pt', 'data-x': p.x, 'data-y': p.y }, s('title', null, `${se.name} · round ${p.x}: ${fmt(p.y)}`)));
      }
    }
    svg.append(g);
  });
  return svg;
}

/** A legend row for a chart's series. */
export function legend(series: { name: string; color: string; dashed?: boolean }[]): SVGSVGElement {
  const width = series.reduce((w, se) => w + 26 + se.name.length * 7 + 14, 0);
  const svg = s('svg', { viewBox: `0 0 ${Math.max(width, 10)} 16`, class: 'legend', width: Math.max(width, 10), height: 16 });
  let x = 0;
  for (const se of series) {
    svg.append(s('line', { x1: x, x2: x + 20, y1: 8, y2: 8, stroke: se.color, 'stroke-width': 3, ...(se.dashed ? { 'stroke-dasharray': '5 3' } : {}) }));
    svg.append(s('text', { x: x + 26, y: 12, class: 'legend-text' }, se.name));
    x += 26 + se.name.length * 7 + 14;
  }
  return svg;
}
