import { describe, expect, it } from 'vitest';
import { decodeDemoShard, encodeDemoShard, labelOfPath, LocalDataError, parseCsv, parseShard, shardForClient, splitEvery } from './data.js';

function pool(n: number, side: number, seed: number) {
  const images = Uint8Array.from({ length: n * side * side }, (_, i) => (i * 7 + seed) % 256);
  const labels = Uint8Array.from({ length: n }, (_, j) => j % 10);
  return { images, labels };
}

describe('demo shard', () => {
  const file = encodeDemoShard(4, pool(40, 4, 1), pool(20, 4, 3));

  it('round-trips: shard i/n holds the i-th slice of each pool, pixels scaled to [0, 1]', () => {
    const { train, test, source } = decodeDemoShard(file, { index: 1, count: 4 });
    expect(source).toBe('MNIST demo shard 1/4');
    expect([train.n, test.n]).toEqual([10, 5]);
    expect(train.featureShape).toEqual([4, 4, 1]);
    // Train example 10 of the pool starts at byte 10·16 of the images: (160·7 + 1) % 256 = 97.
    expect(train.xs[0]).toBeCloseTo(97 / 255, 6);
    expect(Array.from(train.labels)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // Test pool example 5: (80·7 + 3) % 256 = 51.
    expect(test.xs[0]).toBeCloseTo(51 / 255, 6);
    expect(Array.from(test.labels)).toEqual([5, 6, 7, 8, 9]);
  });

  it('the shards of a split cover each pool exactly once', () => {
    const sizes = [0, 1, 2].map((i) => decodeDemoShard(file, { index: i, count: 3 }).train.n);
    expect(sizes).toEqual([13, 13, 14]);
  });

  it('refuses a damaged file', () => {
    expect(() => decodeDemoShard(file.subarray(0, file.length - 1), { index: 0, count: 1 })).toThrow(/truncated/);
    const bad = file.slice();
    bad[0] = 0;
    expect(() => decodeDemoShard(bad, { index: 0, count: 1 })).toThrow(/bad header/);
  });

  it('parses i/n and picks a stable shard per client id', () => {
    expect(parseShard(' 2/4 ')).toEqual({ index: 2, count: 4 });
    for (const bad of ['4/4', '1/0', 'x', '-1/2']) expect(() => parseShard(bad)).toThrow(LocalDataError);
    expect(shardForClient('alice')).toEqual(shardForClient('alice'));
    const spread = new Set(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((id) => shardForClient(id).index));
    expect(spread.size).toBeGreaterThan(1);
  });
});

describe('CSV', () => {
  it('reads features and a label column anywhere; integer labels are class ids; 0..255 is scaled', () => {
    const ds = parseCsv('a,label,b\n255,3,0\n"51",1,102\n');
    expect(ds.n).toBe(2);
    expect(Array.from(ds.xs)).toEqual([1, 0, Math.fround(0.2), Math.fround(0.4)]);
    expect(Array.from(ds.labels)).toEqual([3, 1]);
    expect(ds.numClasses).toBe(4);
    expect(ds.featureShape).toEqual([2]);
  });

  it('names classes by sorted label text when labels are not integers', () => {
    const ds = parseCsv('x,label\n0.5,dog\n0.1,cat\n0.2,dog\n', { shape: [1, 1] });
    expect(ds.classNames).toEqual(['cat', 'dog']);
    expect(Array.from(ds.labels)).toEqual([1, 0, 1]);
    expect(ds.featureShape).toEqual([1, 1]);
  });

  it('says what is wrong, with the line', () => {
    expect(() => parseCsv('x,y\n1,2\n', {}, 'f.csv')).toThrow(/f\.csv: the header has no 'label' column/);
    expect(() => parseCsv('x,label\n1,2\nfoo,1\n', {}, 'f.csv')).toThrow(/line 3, column 'x': 'foo' is not a number/);
    expect(() => parseCsv('x,label\n1\n', {}, 'f.csv')).toThrow(/line 2 has 1 fields/);
    expect(() => parseCsv('x,label\n1,2\n', { shape: [2] }, 'f.csv')).toThrow(/does not hold 1 features/);
  });
});

describe('image folders and held-out splits', () => {
  it('labels an image by its parent folder and notices train/test folders', () => {
    expect(labelOfPath('pets/cat/1.png')).toEqual({ label: 'cat' });
    expect(labelOfPath('pets/Train/dog/a/2.png')).toEqual({ label: 'a', split: 'train' });
    expect(labelOfPath('pets/test/dog/3.jpg')).toEqual({ label: 'dog', split: 'test' });
    expect(labelOfPath('pets/loose.png')).toBeUndefined();
  });

  it('holds out every 5th example', () => {
    const ds = { n: 10, xs: Float32Array.from({ length: 20 }, (_, i) => i), labels: Int32Array.from({ length: 10 }, (_, i) => i), featureShape: [2], numClasses: 10 };
    const { train, test } = splitEvery(ds);
    expect(Array.from(test.labels)).toEqual([4, 9]);
    expect(Array.from(test.xs)).toEqual([8, 9, 18, 19]);
    expect(train.n).toBe(8);
  });
});
