import { describe, expect, it } from 'vitest';
import { createDataset, DataError, labelHistogram, splitHeldOut, subset } from './dataset.js';

function toy(n: number, numClasses = 3) {
  const xs = Float32Array.from({ length: n * 2 }, (_, i) => i);
  const labels = Int32Array.from({ length: n }, (_, i) => i % numClasses);
  return createDataset({ xs, labels, featureShape: [2], numClasses });
}

describe('dataset', () => {
  it('subset copies rows and labels in index order', () => {
    const ds = toy(6);
    const s = subset(ds, [4, 1]);
    expect(s.n).toBe(2);
    expect([...s.xs]).toEqual([8, 9, 2, 3]);
    expect([...s.labels]).toEqual([1, 1]);
    expect(s.featureShape).toEqual([2]);
    s.xs[0] = -1;
    expect(ds.xs[8]).toBe(8);
    expect(() => subset(ds, [6])).toThrow(RangeError);
  });

  it('labelHistogram counts each class', () => {
    expect(labelHistogram(toy(7))).toEqual([3, 2, 2]);
    expect(labelHistogram(toy(0))).toEqual([0, 0, 0]);
  });

  it('createDataset rejects inconsistent fields with codes', () => {
    const bad = (): unknown =>
      createDataset({ xs: new Float32Array(3), labels: new Int32Array(2), featureShape: [2], numClasses: 2 });
    expect(bad).toThrow(DataError);
    expect(bad).toThrow(expect.objectContaining({ code: 'ERR_DATA_FORMAT' }));
    expect(() =>
      createDataset({ xs: new Float32Array(2), labels: Int32Array.of(5), featureShape: [2], numClasses: 2 }),
    ).toThrow(/outside \[0, 2\)/);
  });

  it('splitHeldOut is a deterministic disjoint cover', () => {
    const ds = toy(100);
    const a = splitHeldOut(ds, 20, 'seed');
    const b = splitHeldOut(ds, 20, 'seed');
    expect(a.testIndices).toEqual(b.testIndices);
    expect(a.test.n).toBe(20);
    expect(a.train.n).toBe(80);
    const all = [...a.trainIndices, ...a.testIndices].sort((x, y) => x - y);
    expect(all).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(splitHeldOut(ds, 20, 'other').testIndices).not.toEqual(a.testIndices);
    expect(() => splitHeldOut(ds, 100, 'seed')).toThrow(expect.objectContaining({ code: 'ERR_DATA_SPEC' }));
  });
});
