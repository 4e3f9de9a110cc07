import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { createDataset, DataError, splitHeldOut } from './dataset.js';
import type { Dataset, SplitDataset } from './dataset.js';
import type { Seed } from './prng.js';

/** IDX magic numbers for unsigned-byte data (the only type MNIST-family files use). */
export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;

/** Decoded IDX image file: `n` images of `rows x cols` unsigned bytes. */
export interface IdxImages {
  readonly n: number;
  readonly rows: number;
  readonly cols: number;
  readonly pixels: Uint8Array;
}

function formatError(source: string, message: string, cause?: unknown): DataError {
  return new DataError('ERR_DATA_FORMAT', `${source}: ${message}`, cause === undefined ? undefined : { cause });
}

/** Gunzip if the buffer starts with the gzip magic (1f 8b), else return it unchanged. */
export function maybeGunzip(buf: Uint8Array, source = 'IDX data'): Uint8Array {
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      return gunzipSync(buf);
    } catch (err) {
      throw formatError(source, `corrupt or truncated gzip stream (${(err as Error).message})`, err);
    }
  }
  return buf;
}

/** Parse the header of an IDX buffer, checking magic and that the payload is complete. */
function parseHeader(buf: Uint8Array, magic: number, ndims: number, source: string): number[] {
  const headerBytes = 4 + 4 * ndims;
  if (buf.length < 4) throw formatError(source, `truncated: ${buf.length} bytes, too short for an IDX header`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const found = view.getUint32(0, false);
  if (found !== magic) {
    const hex = (x: number): string => `0x${x.toString(16).padStart(8, '0')}`;
    throw formatError(source, `bad magic ${hex(found)}, expected ${hex(magic)}`);
  }
  if (buf.length < headerBytes) throw formatError(source, `truncated header: ${buf.length} of ${headerBytes} bytes`);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const payload = dims.reduce((a, b) => a * b, 1);
  const have = buf.length - headerBytes;
  if (have < payload) {
    throw formatError(source, `truncated: dims [${dims.join(' x ')}] need ${payload} data bytes, file has ${have}`);
  }
  if (have > payload) throw formatError(source, `${have - payload} unexpected bytes after the data`);
  return dims;
}

/** Parse an IDX3 ubyte image file (magic 0x00000803), raw or gzipped. */
export function parseIdxImages(input: Uint8Array, source = 'IDX images'): IdxImages {
  const buf = maybeGunzip(input, source);
  const [n, rows, cols] = parseHeader(buf, IDX_IMAGES_MAGIC, 3, source) as [number, number, number];
  return { n, rows, cols, pixels: buf.subarray(16, 16 + n * rows * cols) };
}

/** Parse an IDX1 ubyte label file (magic 0x00000801), raw or gzipped. */
export function parseIdxLabels(input: Uint8Array, source = 'IDX labels'): Uint8Array {
  const buf = maybeGunzip(input, source);
  const [n] = parseHeader(buf, IDX_LABELS_MAGIC, 1, source) as [number];
  return buf.subarray(8, 8 + n);
}

/** Encode images as an IDX3 ubyte file (for tests and tools). */
export function encodeIdxImages(images: IdxImages): Uint8Array {
  const out = new Uint8Array(16 + images.pixels.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, IDX_IMAGES_MAGIC, false);
  view.setUint32(4, images.n, false);
  view.setUint32(8, images.rows, false);
  view.setUint32(12, images.cols, false);
  out.set(images.pixels, 16);
  return out;
}

/** Encode labels as an IDX1 ubyte file (for tests and tools). */
export function encodeIdxLabels(labels: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + labels.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, IDX_LABELS_MAGIC, false);
  view.setUint32(4, labels.length, false);
  out.set(labels, 8);
  return out;
}

/** Turn parsed images + labels into a Dataset (pixels / 255, shape [rows, cols, 1]). */
export function idxToDataset(images: IdxImages, labels: Uint8Array, numClasses: number, source = 'IDX'): Dataset {
  if (images.n !== labels.length) {
    throw formatError(source, `count mismatch: ${images.n} images but ${labels.length} labels`);
  }
  const xs = new Float32Array(images.pixels.length);
  for (let i = 0; i < xs.length; i++) xs[i] = (images.pixels[i] as number) / 255;
  return createDataset({ xs, labels: Int32Array.from(labels), featureShape: [images.rows, images.cols, 1], numClasses });
}

/** Accepted file names, in preference order (the canonical names, and the Kaggle dotted ones). */
function candidates(stem: 'train-images' | 'train-labels' | 't10k-images' | 't10k-labels'): string[] {
  const kind = stem.endsWith('images') ? 'idx3-ubyte' : 'idx1-ubyte';
  return [`${stem}-${kind}`, `${stem}-${kind}.gz`, `${stem}.${kind}`, `${stem}.${kind}.gz`];
}

function findFile(dir: string, entries: ReadonlySet<string>, names: string[]): string | undefined {
  const name = names.find((f) => entries.has(f));
  return name === undefined ? undefined : join(dir, name);
}

async function readPair(imagesPath: string, labelsPath: string): Promise<[IdxImages, Uint8Array]> {
  const [imgBuf, lblBuf] = await Promise.all([readFile(imagesPath), readFile(labelsPath)]);
  return [parseIdxImages(imgBuf, imagesPath), parseIdxLabels(lblBuf, labelsPath)];
}

/** Options for `loadIdxDir`. */
export interface LoadIdxOptions {
  /** When the directory has no t10k files: examples held out as test (default 20% of train). */
  readonly heldOut?: number;
  /** Seed for that held-out split (default 'tessera'). */
  readonly seed?: Seed;
}

/**
 * Load an MNIST-format directory: `train-images-idx3-ubyte`, `train-labels-idx1-ubyte` and
 * optionally `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte` (each raw or `.gz`). Without
 * the t10k pair a deterministic split of train is held out as test.
 * @example
 * const { train, test } = await loadIdxDir('./data/fashion-mnist');
 */
export async function loadIdxDir(dir: string, options: LoadIdxOptions = {}): Promise<SplitDataset> {
  let entries: Set<string>;
  try {
    entries = new Set(await readdir(dir));
  } catch (err) {
    throw new DataError('ERR_DATA_NOT_FOUND', `IDX directory ${dir} cannot be read: ${(err as Error).message}`, { cause: err });
  }
  const trainImages = findFile(dir, entries, candidates('train-images'));
  const trainLabels = findFile(dir, entries, candidates('train-labels'));
  if (trainImages === undefined || trainLabels === undefined) {
    const missing = trainImages === undefined ? candidates('train-images')[0] : candidates('train-labels')[0];
    throw new DataError('ERR_DATA_NOT_FOUND', `IDX directory ${dir} has no ${missing}(.gz)`);
  }
  const testImages = findFile(dir, entries, candidates('t10k-images'));
  const testLabels = findFile(dir, entries, candidates('t10k-labels'));
  if ((testImages === undefined) !== (testLabels === undefined)) {
    const missing = testImages === undefined ? candidates('t10k-images')[0] : candidates('t10k-labels')[0];
    throw new DataError('ERR_DATA_NOT_FOUND', `IDX directory ${dir} has one t10k file but no ${missing}(.gz)`);
  }

  const [trImg, trLbl] = await readPair(trainImages, trainLabels);
  if (testImages === undefined || testLabels === undefined) {
    const numClasses = maxLabel(trLbl) + 1;
    const all = idxToDataset(trImg, trLbl, numClasses, trainImages);
    const heldOut = options.heldOut ?? Math.max(1, Math.floor(all.n * 0.2));
    const { train, test } = splitHeldOut(all, heldOut, options.seed ?? 'tessera');
    return { train, test };
  }
  const [teImg, teLbl] = await readPair(testImages, testLabels);
  if (teImg.rows !== trImg.rows || teImg.cols !== trImg.cols) {
    throw formatError(testImages, `images are ${teImg.rows}x${teImg.cols} but train images are ${trImg.rows}x${trImg.cols}`);
  }
  // Both splits share one class count so a model sized from train can score test.
  const numClasses = Math.max(maxLabel(trLbl), maxLabel(teLbl)) + 1;
  return {
    train: idxToDataset(trImg, trLbl, numClasses, trainImages),
    test: idxToDataset(teImg, teLbl, numClasses, testImages),
  };
}

function maxLabel(labels: Uint8Array): number {
  let max = 0;
  for (const y of labels) if (y > max) max = y;
  return max;
}
