import { describe, expect, it } from 'vitest';
import { createDataset } from './dataset.js';
import type { Dataset } from './dataset.js';
import { parsePartitionScheme, partition } from './partition.js';

/** n examples, 10 balanced classes, label-sorted (the worst case for naive splitting). */
function sortedToy(n: number, numClasses = 10): Dataset {
  const labels = Int32Array.from({ length: n }, (_, i) => Math.floor((i * numClasses) / n));
  return createDataset({ xs: new Float32Array(n), labels, featureShape: [1], numClasses });
}

function expectDisjointCover(parts: number[][], n: number): void {
  const all = parts.flat().sort((a, b) => a - b);
  expect(all).toEqual(Array.from({ length: n }, (_, i) => i));
}

/** Mean over clients of (examples of the client's most common class) / (client's examples). */
function meanMaxClassFraction(ds: Dataset, parts: number[][]): number {
  const fractions = parts.map((p) => {
    const counts = new Array<number>(ds.numClasses).fill(0);
    for (const i of p) counts[ds.labels[i] as number] = (counts[ds.labels[i] as number] as number) + 1;
    return Math.max(...counts) / p.length;
  });
  return fractions.reduce((a, b) => a + b, 0) / fractions.length;
}

function distinctLabels(ds: Dataset, p: number[]): number {
  return new Set(p.map((i) => ds.labels[i])).size;
}

const ds = sortedToy(2000);

describe('partition', () => {
  it('iid: disjoint cover, sizes within one, mixed labels', () => {
    const parts = partition(ds, 'iid', 7, 'seed');
    expectDisjointCover(parts, ds.n);
    const sizes = parts.map((p) => p.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    expect(meanMaxClassFraction(ds, parts)).toBeLessThan(0.2);
    expect(partition(ds, 'iid', 7, 'seed')).toEqual(parts);
    expect(partition(ds, 'iid', 7, 'other')).not.toEqual(parts);
  });

  it('iid with more clients than examples leaves some parts empty', () => {
    const parts = partition(sortedToy(3, 3), 'iid', 5, 1);
    expectDisjointCover(parts, 3);
    expect(parts.filter((p) => p.length === 0)).toHaveLength(2);
  });

  it('dirichlet: disjoint cover, deterministic, skewed for small alpha', () => {
    const parts = partition(ds, 'dirichlet:0.1', 10, 'seed');
    expectDisjointCover(parts, ds.n);
    expect(partition(ds, 'dirichlet:0.1', 10, 'seed')).toEqual(parts);
    expect(partition(ds, 'dirichlet:0.1', 10, 'seed2')).not.toEqual(parts);
    const skewed = meanMaxClassFraction(ds, parts);
    const iid = meanMaxClassFraction(ds, partition(ds, 'iid', 10, 'seed'));
    expect(skewed).toBeGreaterThan(0.5);
    expect(skewed).toBeGreaterThan(iid + 0.3);
    // Large alpha approaches iid.
    expect(meanMaxClassFraction(ds, partition(ds, 'dirichlet:1000', 10, 'seed'))).toBeLessThan(0.2);
  });

  it('dirichlet gives every client at least one example, even with tiny alpha', () => {
    for (const seed of ['a', 'b', 'c', 'd']) {
      const parts = partition(sortedToy(120), 'dirichlet:0.01', 100, seed);
      expectDisjointCover(parts, 120);
      expect(Math.min(...parts.map((p) => p.length))).toBeGreaterThanOrEqual(1);
    }
  });

  it('shards:2 gives each client about two labels', () => {
    const parts = partition(ds, 'shards:2', 10, 'seed');
    expectDisjointCover(parts, ds.n);
    for (const p of parts) expect(p.length).toBe(200);
    const labelsPerClient = parts.map((p) => distinctLabels(ds, p));
    // Shards are label-contiguous 100-example runs; 20 shards over 10 classes never straddle.
    expect(labelsPerClient.every((k) => k <= 2)).toBe(true);
    const uneven = sortedToy(1000, 7);
    const parts2 = partition(uneven, 'shards:2', 10, 'seed');
    expectDisjointCover(parts2, 1000);
    const counts = parts2.map((p) => distinctLabels(uneven, p));
    expect(Math.max(...counts)).toBeLessThanOrEqual(4);
    expect(counts.reduce((a, b) => a + b, 0) / counts.length).toBeLessThanOrEqual(3);
    expect(partition(ds, 'shards:2', 10, 'seed')).toEqual(parts);
  });

  it('validates schemes and sizes with ERR_PARTITION', () => {
    for (const bad of ['', 'iid:3', 'dirichlet', 'dirichlet:0', 'dirichlet:-1', 'dirichlet:abc', 'shards:0', 'shards:1.5', 'shards', 'random', 'shards:2:3']) {
      expect(() => partition(ds, bad, 4, 's')).toThrow(expect.objectContaining({ code: 'ERR_PARTITION' }));
    }
    expect(() => partition(ds, 'bogus', 4, 's')).toThrow(/invalid partition scheme 'bogus'.*dirichlet:ALPHA/);
    expect(() => partition(ds, 'iid', 0, 's')).toThrow(/numClients/);
    expect(() => partition(sortedToy(5), 'dirichlet:1', 6, 's')).toThrow(/at least 6 examples/);
    expect(() => partition(sortedToy(5), 'shards:2', 3, 's')).toThrow(/at least 6 examples/);
    expect(parsePartitionScheme(' Dirichlet:0.5 ')).toEqual({ kind: 'dirichlet', alpha: 0.5 });
    expect(parsePartitionScheme('shards:3')).toEqual({ kind: 'shards', shardsPerClient: 3 });
  });
});
