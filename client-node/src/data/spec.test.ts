import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { labelHistogram } from './dataset.js';
import { encodeIdxImages, encodeIdxLabels } from './idx.js';
import { loadDataSpec, parseDataSpec, shardFor } from './spec.js';

describe('parseDataSpec', () => {
  it('parses kinds, paths and options', () => {
    expect(parseDataSpec('mnist')).toEqual({ kind: 'mnist' });
    expect(parseDataSpec('mnist;heldout=500;seed=x')).toEqual({ kind: 'mnist', heldOut: 500, seed: 'x' });
    expect(parseDataSpec('idx:/data/fashion')).toEqual({ kind: 'idx', path: '/data/fashion' });
    expect(parseDataSpec('csv:C:\\data\\d.csv;label=digit;shape=28x28x1;scale=255;test=t.csv;HeldOut=10')).toEqual({
      kind: 'csv',
      path: 'C:\\data\\d.csv',
      label: 'digit',
      shape: '28x28x1',
      scale: 255,
      test: 't.csv',
      heldOut: 10,
    });
  });

  it('rejects malformed specs with ERR_DATA_SPEC', () => {
    for (const bad of ['', 'foo', 'mnist:x', 'idx', 'csv:', 'mnist;label=y', 'csv:a;label', 'csv:a;label=', 'csv:a;label=a;label=b', 'mnist;heldout=-1', 'csv:a;scale=0']) {
      expect(() => parseDataSpec(bad)).toThrow(expect.objectContaining({ code: 'ERR_DATA_SPEC' }));
    }
    expect(() => parseDataSpec('mnist;label=y')).toThrow(/unknown option 'label' for mnist/);
  });
});

describe('loadDataSpec', () => {
  it('loads mnist with a held-out split', async () => {
    const { train, test } = await loadDataSpec('mnist;heldout=1000');
    expect([train.n, test.n]).toEqual([9000, 1000]);
    expect(train.featureShape).toEqual([28, 28, 1]);
  });

  it('loads csv and idx through the spec', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tessera-spec-'));
    try {
      const rows = Array.from({ length: 10 }, (_, i) => `${i % 2 ? 'odd' : 'even'},${i},${2 * i},${3 * i},${4 * i}`);
      await writeFile(join(dir, 'd.csv'), `kind,a,b,c,d\n${rows.join('\n')}\n`);
      const csv = await loadDataSpec(`csv:${join(dir, 'd.csv')};label=kind;shape=2x2;scale=2;heldout=3`);
      expect([csv.train.n, csv.test.n]).toEqual([7, 3]);
      expect(csv.train.featureShape).toEqual([2, 2]);
      expect(csv.train.classNames).toEqual(['even', 'odd']);

      const pixels = Uint8Array.from({ length: 8 * 4 }, (_, i) => i);
      await writeFile(join(dir, 'train-images-idx3-ubyte'), encodeIdxImages({ n: 8, rows: 2, cols: 2, pixels }));
      await writeFile(join(dir, 'train-labels-idx1-ubyte'), encodeIdxLabels(Uint8Array.from({ length: 8 }, (_, i) => i % 2)));
      const idx = await loadDataSpec(`idx:${dir};heldout=2;seed=s`);
      expect([idx.train.n, idx.test.n]).toEqual([6, 2]);
      expect(idx.train.featureShape).toEqual([2, 2, 1]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('shardFor', () => {
  it('gives each client a disjoint share of train and test; shares cover both', async () => {
    const data = await loadDataSpec('mnist');
    const numClients = 5;
    const shares = Array.from({ length: numClients }, (_, index) =>
      shardFor(data, { partition: 'dirichlet:0.3', numClients, index, seed: 'run-1' }),
    );
    expect(shares.reduce((a, s) => a + s.train.n, 0)).toBe(data.train.n);
    expect(shares.reduce((a, s) => a + s.test.n, 0)).toBe(data.test.n);
    for (const s of shares) {
      expect(s.train.n).toBeGreaterThan(0);
      expect(s.test.n).toBe(data.test.n / numClients); // test is split iid
    }
    // Per-class totals across clients equal the whole train set's.
    const total = shares.map((s) => labelHistogram(s.train)).reduce((a, h) => a.map((x, i) => x + (h[i] as number)));
    expect(total).toEqual(labelHistogram(data.train));
    // Recomputing one client's share (as a separate process would) gives the same data.
    const again = shardFor(data, { partition: 'dirichlet:0.3', numClients, index: 2, seed: 'run-1' });
    expect([...again.train.labels]).toEqual([...(shares[2]?.train.labels ?? [])]);
    expect(() => shardFor(data, { partition: 'iid', numClients, index: 5, seed: 1 })).toThrow(
      expect.objectContaining({ code: 'ERR_PARTITION' }),
    );
  });
});
