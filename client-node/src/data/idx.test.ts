import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeIdxImages, encodeIdxLabels, loadIdxDir, parseIdxImages, parseIdxLabels } from './idx.js';

/** n images of 3x2 pixels whose bytes encode (image, pixel), labels i % 4. */
function fixture(n: number, offset = 0) {
  const pixels = Uint8Array.from({ length: n * 6 }, (_, i) => (i * 7 + offset) % 256);
  const labels = Uint8Array.from({ length: n }, (_, i) => (i + offset) % 4);
  return { images: { n, rows: 3, cols: 2, pixels }, labels };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-idx-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('IDX parsing', () => {
  it('round-trips images and labels, raw and gzipped', () => {
    const { images, labels } = fixture(5);
    for (const wrap of [(b: Uint8Array) => b, (b: Uint8Array) => gzipSync(b)]) {
      const img = parseIdxImages(wrap(encodeIdxImages(images)));
      expect([img.n, img.rows, img.cols]).toEqual([5, 3, 2]);
      expect([...img.pixels]).toEqual([...images.pixels]);
      expect([...parseIdxLabels(wrap(encodeIdxLabels(labels)))]).toEqual([...labels]);
    }
  });

  it('rejects bad magic, truncation and trailing bytes with ERR_DATA_FORMAT', () => {
    const { images, labels } = fixture(4);
    const imgBytes = encodeIdxImages(images);
    expect(() => parseIdxImages(encodeIdxLabels(labels), 'x')).toThrow(/x: bad magic 0x00000801, expected 0x00000803/);
    expect(() => parseIdxLabels(imgBytes)).toThrow(expect.objectContaining({ code: 'ERR_DATA_FORMAT' }));
    expect(() => parseIdxImages(imgBytes.subarray(0, imgBytes.length - 1))).toThrow(/truncated: .* need 24 data bytes, file has 23/);
    expect(() => parseIdxImages(imgBytes.subarray(0, 10))).toThrow(/truncated header/);
    expect(() => parseIdxImages(new Uint8Array(2))).toThrow(expect.objectContaining({ code: 'ERR_DATA_FORMAT' }));
    const gz = gzipSync(imgBytes);
    expect(() => parseIdxImages(gz.subarray(0, gz.length - 10))).toThrow(expect.objectContaining({ code: 'ERR_DATA_FORMAT' }));
    const padded = new Uint8Array(imgBytes.length + 3);
    padded.set(imgBytes);
    expect(() => parseIdxImages(padded)).toThrow(/3 unexpected bytes/);
  });
});

describe('loadIdxDir', () => {
  async function writeSet(prefix: 'train' | 't10k', n: number, gzip: boolean, offset = 0): Promise<void> {
    const { images, labels } = fixture(n, offset);
    const suffix = gzip ? '.gz' : '';
    const enc = (b: Uint8Array): Uint8Array => (gzip ? gzipSync(b) : b);
    await writeFile(join(dir, `${prefix}-images-idx3-ubyte${suffix}`), enc(encodeIdxImages(images)));
    await writeFile(join(dir, `${prefix}-labels-idx1-ubyte${suffix}`), enc(encodeIdxLabels(labels)));
  }

  it('loads train and t10k files, scaling pixels to [0, 1]', async () => {
    await writeSet('train', 10, false);
    await writeSet('t10k', 4, true, 1);
    const { train, test } = await loadIdxDir(dir);
    expect(train.n).toBe(10);
    expect(test.n).toBe(4);
    expect(train.featureShape).toEqual([3, 2, 1]);
    expect(train.numClasses).toBe(4);
    expect(test.numClasses).toBe(4);
    const { images, labels } = fixture(10);
    expect(train.xs[13]).toBeCloseTo((images.pixels[13] as number) / 255, 6);
    expect([...train.labels]).toEqual([...labels]);
    expect([...test.labels]).toEqual([1, 2, 3, 0]);
    expect(Math.max(...train.xs)).toBeLessThanOrEqual(1);
  });

  it('holds out a split when there are no t10k files', async () => {
    await writeSet('train', 20, true);
    const { train, test } = await loadIdxDir(dir, { heldOut: 5, seed: 's' });
    expect(train.n).toBe(15);
    expect(test.n).toBe(5);
    const again = await loadIdxDir(dir, { heldOut: 5, seed: 's' });
    expect([...again.test.xs]).toEqual([...test.xs]);
    expect((await loadIdxDir(dir)).test.n).toBe(4); // default 20%
  });

  it('reports missing files and count mismatches', async () => {
    await expect(loadIdxDir(join(dir, 'nope'))).rejects.toMatchObject({ code: 'ERR_DATA_NOT_FOUND' });
    await expect(loadIdxDir(dir)).rejects.toThrow(/no train-images-idx3-ubyte/);
    await writeSet('train', 6, false);
    await writeFile(join(dir, 't10k-images-idx3-ubyte'), encodeIdxImages(fixture(2).images));
    await expect(loadIdxDir(dir)).rejects.toThrow(/no t10k-labels-idx1-ubyte/);
    await writeFile(join(dir, 't10k-labels-idx1-ubyte'), encodeIdxLabels(fixture(3).labels));
    await expect(loadIdxDir(dir)).rejects.toMatchObject({ code: 'ERR_DATA_FORMAT', message: expect.stringMatching(/2 images but 3 labels/) });
  });
});
