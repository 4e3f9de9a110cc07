import { createPrng } from './prng.js';
import type { Seed } from './prng.js';

/**
 * An in-memory labelled dataset: `n` examples stored row-major in `xs`
 * (`n * product(featureShape)` floats) with one class index per example in `labels`.
 * Treat the arrays as read-only; `subset` copies.
 */
export interface Dataset {
  readonly xs: Float32Array;
  readonly labels: Int32Array;
  readonly n: number;
  readonly featureShape: readonly number[];
  readonly numClasses: number;
  /** Class names when labels were strings (index = class id); absent for integer labels. */
  readonly classNames?: readonly string[];
}

/** A dataset with its held-out evaluation split. */
export interface SplitDataset {
  readonly train: Dataset;
  readonly test: Dataset;
}

/** Stable error codes for data loading and partitioning (jose-style `.code`). */
export type DataErrorCode =
  | 'ERR_DATA_FORMAT' // a file's content is malformed (bad magic, truncated, ragged CSV row, …)
  | 'ERR_DATA_NOT_FOUND' // a required file is missing
  | 'ERR_DATA_SPEC' // a data spec string or loader option is invalid
  | 'ERR_PARTITION'; // a partition scheme is invalid or cannot be satisfied

/** An error from the data layer, with a stable `code`. */
export class DataError extends Error {
  readonly code: DataErrorCode;

  constructor(code: DataErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DataError';
    this.code = code;
  }
}

/** Number of floats per example for a feature shape. */
export function featureSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Build a Dataset, checking that array lengths, shape and labels agree. */
export function createDataset(fields: {
  xs: Float32Array;
  labels: Int32Array;
  featureShape: readonly number[];
  numClasses: number;
  classNames?: readonly string[];
}): Dataset {
  const { xs, labels, featureShape, numClasses, classNames } = fields;
  if (featureShape.length === 0 || !featureShape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new DataError('ERR_DATA_SPEC', `feature shape must be positive integers, got [${featureShape.join(', ')}]`);
  }
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new DataError('ERR_DATA_SPEC', `numClasses must be a positive integer, got ${numClasses}`);
  }
  const n = labels.length;
  const size = featureSize(featureShape);
  if (xs.length !== n * size) {
    throw new DataError('ERR_DATA_FORMAT', `xs has ${xs.length} values, expected ${n} examples x ${size} features`);
  }
  for (let i = 0; i < n; i++) {
    const y = labels[i] as number;
    if (y < 0 || y >= numClasses) {
      throw new DataError('ERR_DATA_FORMAT', `label ${y} of example ${i} is outside [0, ${numClasses})`);
    }
  }
  if (classNames !== undefined && classNames.length !== numClasses) {
    throw new DataError('ERR_DATA_SPEC', `${classNames.length} class names for ${numClasses} classes`);
  }
  return {
    xs,
    labels,
    n,
    featureShape: Object.freeze([...featureShape]),
    numClasses,
    ...(classNames !== undefined ? { classNames: Object.freeze([...classNames]) } : {}),
  };
}

/** A new Dataset holding copies of the examples at `indices`, in that order. */
export function subset(ds: Dataset, indices: readonly number[]): Dataset {
  const size = featureSize(ds.featureShape);
  const xs = new Float32Array(indices.length * size);
  const labels = new Int32Array(indices.length);
  indices.forEach((idx, j) => {
    if (!Number.isInteger(idx) || idx < 0 || idx >= ds.n) {
      throw new RangeError(`subset index ${idx} is outside [0, ${ds.n})`);
    }
    xs.set(ds.xs.subarray(idx * size, (idx + 1) * size), j * size);
    labels[j] = ds.labels[idx] as number;
  });
  return {
    xs,
    labels,
    n: indices.length,
    featureShape: ds.featureShape,
    numClasses: ds.numClasses,
    ...(ds.classNames !== undefined ? { classNames: ds.classNames } : {}),
  };
}

/** Count of examples per class, length `numClasses`. */
export function labelHistogram(ds: Dataset): number[] {
  const counts = new Array<number>(ds.numClasses).fill(0);
  for (let i = 0; i < ds.n; i++) {
    const y = ds.labels[i] as number;
    counts[y] = (counts[y] as number) + 1;
  }
  return counts;
}

/** Result of `splitHeldOut`: the two datasets and which source rows went where. */
export interface HeldOutSplit extends SplitDataset {
  readonly trainIndices: readonly number[];
  readonly testIndices: readonly number[];
}

/**
 * Deterministically hold out `count` random examples as a test split no client trains on.
 * Both splits keep the shuffled order; the same seed always gives the same split.
 */
export function splitHeldOut(ds: Dataset, count: number, seed: Seed): HeldOutSplit {
  if (!Number.isInteger(count) || count < 0 || count >= ds.n) {
    throw new DataError('ERR_DATA_SPEC', `held-out count must be an integer in [0, ${ds.n}), got ${count}`);
  }
  const order = createPrng(seed, 'held-out').shuffle(Array.from({ length: ds.n }, (_, i) => i));
  const testIndices = order.slice(0, count);
  const trainIndices = order.slice(count);
  return { train: subset(ds, trainIndices), test: subset(ds, testIndices), trainIndices, testIndices };
}
