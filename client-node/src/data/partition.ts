import { DataError } from './dataset.js';
import type { Dataset } from './dataset.js';
import { createPrng } from './prng.js';
import type { Prng, Seed } from './prng.js';

/** A parsed partition scheme. */
export type PartitionScheme =
  | { readonly kind: 'iid' }
  | { readonly kind: 'dirichlet'; readonly alpha: number }
  | { readonly kind: 'shards'; readonly shardsPerClient: number };

const SCHEME_HELP = "expected 'iid', 'dirichlet:ALPHA' (ALPHA > 0, e.g. dirichlet:0.5) or 'shards:K' (integer K >= 1, e.g. shards:2)";

function schemeError(scheme: string, detail = ''): DataError {
  return new DataError('ERR_PARTITION', `invalid partition scheme '${scheme}'${detail}: ${SCHEME_HELP}`);
}

/** Parse `iid`, `dirichlet:ALPHA` or `shards:K`. */
export function parsePartitionScheme(scheme: string): PartitionScheme {
  const [kind = '', arg, ...rest] = scheme.trim().split(':');
  if (rest.length > 0) throw schemeError(scheme);
  switch (kind.toLowerCase()) {
    case 'iid':
      if (arg !== undefined) throw schemeError(scheme, ' (iid takes no argument)');
      return { kind: 'iid' };
    case 'dirichlet': {
      const alpha = arg === undefined || arg.trim() === '' ? Number.NaN : Number(arg);
      if (!Number.isFinite(alpha) || alpha <= 0) throw schemeError(scheme, ' (bad ALPHA)');
      return { kind: 'dirichlet', alpha };
    }
    case 'shards': {
      const k = arg === undefined || !/^\s*\d+\s*$/.test(arg) ? Number.NaN : Number(arg);
      if (!Number.isSafeInteger(k) || k < 1) throw schemeError(scheme, ' (bad K)');
      return { kind: 'shards', shardsPerClient: k };
    }
    default:
      throw schemeError(scheme);
  }
}

/**
 * Split `ds` among `numClients` clients: disjoint index lists that together cover every
 * example. Deterministic for a seed, so each client process can compute its own share.
 *  - `iid`: shuffle, then split into sizes that differ by at most one.
 *  - `dirichlet:ALPHA`: label skew; each class is split by proportions ~ Dirichlet(ALPHA)
 *    (small ALPHA = more skew); every client is then given at least one example.
 *  - `shards:K`: sort by label, cut into numClients*K shards, deal K random shards per client.
 * @example
 * const parts = partition(train, 'dirichlet:0.3', 10, 'tessera');
 * const mine = subset(train, parts[clientIndex]);
 */
export function partition(ds: Dataset, scheme: string, numClients: number, seed: Seed): number[][] {
  const parsed = parsePartitionScheme(scheme);
  if (!Number.isSafeInteger(numClients) || numClients < 1) {
    throw new DataError('ERR_PARTITION', `numClients must be a positive integer, got ${numClients}`);
  }
  const rng = createPrng(seed, `partition/${parsed.kind}`);
  let parts: number[][];
  switch (parsed.kind) {
    case 'iid':
      // Sizes differ by at most one; with fewer examples than clients some parts are empty.
      return splitEvenly(rng.shuffle(range(ds.n)), numClients);
    case 'dirichlet':
      requireExamples(ds, numClients, scheme);
      parts = dirichletSplit(ds, parsed.alpha, numClients, rng);
      break;
    case 'shards':
      requireExamples(ds, numClients * parsed.shardsPerClient, scheme, 'shards');
      parts = shardSplit(ds, parsed.shardsPerClient, numClients, rng);
      break;
  }
  // Label-grouped parts would feed a client one class at a time; mix each client's order.
  return parts.map((p) => rng.shuffle(p));
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function requireExamples(ds: Dataset, needed: number, scheme: string, what = 'clients'): void {
  if (ds.n < needed) {
    throw new DataError('ERR_PARTITION', `partition '${scheme}' needs at least ${needed} examples (one per ${what === 'clients' ? 'client' : 'shard'}), dataset has ${ds.n}`);
  }
}

function splitEvenly(order: readonly number[], parts: number): number[][] {
  const n = order.length;
  return Array.from({ length: parts }, (_, i) => order.slice(Math.floor((i * n) / parts), Math.floor(((i + 1) * n) / parts)));
}

function indicesByClass(ds: Dataset): number[][] {
  const byClass: number[][] = Array.from({ length: ds.numClasses }, () => []);
  for (let i = 0; i < ds.n; i++) (byClass[ds.labels[i] as number] as number[]).push(i);
  return byClass;
}

function dirichletSplit(ds: Dataset, alpha: number, numClients: number, rng: Prng): number[][] {
  const parts: number[][] = Array.from({ length: numClients }, () => []);
  for (const members of indicesByClass(ds)) {
    if (members.length === 0) continue;
    rng.shuffle(members);
    const p = rng.dirichlet(alpha, numClients);
    // Cut at rounded cumulative proportions so the counts always sum to the class size.
    let cum = 0;
    let start = 0;
    for (let c = 0; c < numClients; c++) {
      cum += p[c] as number;
      const end = c === numClients - 1 ? members.length : Math.min(members.length, Math.round(cum * members.length));
      for (let j = start; j < end; j++) (parts[c] as number[]).push(members[j] as number);
      start = Math.max(start, end);
    }
  }
  // Guarantee non-empty clients by moving one example from the currently largest client.
  // Deterministic and bounded, unlike resampling, which can loop for tiny alpha.
  for (const empty of parts) {
    if (empty.length > 0) continue;
    let donor = parts[0] as number[];
    for (const q of parts) if (q.length > donor.length) donor = q;
    empty.push(donor.pop() as number);
  }
  return parts;
}

function shardSplit(ds: Dataset, shardsPerClient: number, numClients: number, rng: Prng): number[][] {
  // Stable sort by label (then index) so shards are label-contiguous.
  const sorted = indicesByClass(ds).flat();
  const shards = splitEvenly(sorted, numClients * shardsPerClient);
  const order = rng.shuffle(range(shards.length));
  return Array.from({ length: numClients }, (_, c) =>
    order.slice(c * shardsPerClient, (c + 1) * shardsPerClient).flatMap((s) => shards[s] as number[]),
  );
}
