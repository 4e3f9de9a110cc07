/**
 * Tiny DOM helpers for the console (browser code, compiled by the server's tsc into dist/console).
 * Text always goes in as text nodes, never as HTML, so data from the server cannot inject markup.
 */

type Child = Node | string | number | null | undefined | false | Child[];
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

/** Creates an element: attributes (`on…` keys are listeners, `class`, `data-*`, booleans) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs | null = null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Creates an SVG element with attributes and children. */
export function s<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Attrs | null = null, ...children: Child[]): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el: Element, attrs: Attrs | null): void {
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
}

function append(el: Element, children: Child[]): void {
  for (const c of children.flat(Infinity as 1) as Child[]) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function mount(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

/** "3 s ago", "5 min ago", "2 h ago", or a date. */
export function ago(ms: number | null | undefined): string {
  if (!ms) return '—';
  const d = (Date.now() - ms) / 1000;
  if (d < 0) return 'now';
  if (d < 60) return `${Math.round(d)} s ago`;
  if (d < 3600) return `${Math.round(d / 60)} min ago`;
  if (d < 86_400) return `${Math.round(d / 3600)} h ago`;
  return new Date(ms).toLocaleString();
}

/** "in 42 s", "in 3 min", or "passed". */
export function until(ms: number | null | undefined): string {
  if (!ms) return '—';
  const d = (ms - Date.now()) / 1000;
  if (d <= 0) return 'passed';
  if (d < 90) return `in ${Math.ceil(d)} s`;
  if (d < 5400) return `in ${Math.round(d / 60)} min`;
  return `in ${Math.round(d / 3600)} h`;
}

export function time(ms: number | null | undefined): string {
  return ms ? new Date(ms).toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' }) : '—';
}

/** A coloured status pill. */
export function badge(text: string, kind?: string): HTMLSpanElement {
  return h('span', { class: `badge badge-${kind ?? text}` }, text);
}

export function fmt(n: number | null | undefined, digits = 4): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  return Math.abs(n) >= 1000 || Number.isInteger(n) ? String(Math.round(n * 100) / 100) : n.toFixed(digits);
}
