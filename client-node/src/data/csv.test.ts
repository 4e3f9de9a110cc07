import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadCsv, parseCsv, parseShape } from './csv.js';

describe('parseCsv', () => {
  it('reads numeric features and integer labels from any column', () => {
    const ds = parseCsv('a,label,b\n1,2,3\n4.5,0,-6e-1\n');
    expect(ds.n).toBe(2);
    expect(ds.featureShape).toEqual([2]);
    expect([...ds.xs]).toEqual([1, 3, 4.5, Math.fround(-0.6)]);
    expect([...ds.labels]).toEqual([2, 0]);
    expect(ds.numClasses).toBe(3);
    expect(ds.classNames).toBeUndefined();
  });

  it('maps string labels to sorted class indices', () => {
    const ds = parseCsv('x,species\n1,virginica\n2,setosa\n3,versicolor\n4,setosa\n', { label: 'species' });
    expect(ds.classNames).toEqual(['setosa', 'versicolor', 'virginica']);
    expect([...ds.labels]).toEqual([2, 0, 1, 0]);
    expect(ds.numClasses).toBe(3);
  });

  it('handles CRLF, BOM, blank lines, quoted fields and shapes', () => {
    const text = '\uFEFF"p 1","p,2",p3,p4,label\r\n0,1,2,3,"cat"\r\n\r\n4,5,6,7,"a ""quoted""\nname"\r\n';
    const ds = parseCsv(text, { shape: '2x2x1', scale: 2 });
    expect(ds.featureShape).toEqual([2, 2, 1]);
    expect([...ds.xs]).toEqual([0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5]);
    expect(ds.classNames).toEqual(['a "quoted"\nname', 'cat']);
    expect([...ds.labels]).toEqual([1, 0]);
    expect(parseShape('28x28x1')).toEqual([28, 28, 1]);
  });

  it('reports errors with line numbers and codes', () => {
    expect(() => parseCsv('a,label\n1,0\nx,1\n', { source: 'f.csv' })).toThrow("f.csv: line 3, column 'a': non-numeric value 'x'");
    expect(() => parseCsv('a,label\n1,0\n\n,1\n')).toThrow("line 4, column 'a': non-numeric value ''");
    expect(() => parseCsv('a,b,label\n1,2,0\n1,2\n')).toThrow('line 3: expected 3 fields, got 2');
    expect(() => parseCsv('a,b,label\n1,2,0\n1,2\n')).toThrow(expect.objectContaining({ code: 'ERR_DATA_FORMAT' }));
    expect(() => parseCsv('a,"b\n2",label\n1,2,0\n3,4\n')).toThrow('line 4: expected 3 fields, got 2');
    expect(() => parseCsv('a,y\n1,0\n')).toThrow(/no label column 'label'/);
    expect(() => parseCsv('a,label\n1,\n')).toThrow('line 2: empty label');
    expect(() => parseCsv('a,label\n')).toThrow(/no data rows/);
    expect(() => parseCsv('')).toThrow(/empty file/);
    expect(() => parseCsv('a,label\n"1,0\n')).toThrow('line 2: unterminated quoted field');
    expect(() => parseCsv('a,b,label\n1,2,0\n', { shape: '3x1' })).toThrow(expect.objectContaining({ code: 'ERR_DATA_SPEC' }));
    expect(() => parseCsv('a,label\nInfinity,0\n')).toThrow(/non-numeric value 'Infinity'/);
    expect(() => parseShape('28*28')).toThrow(/not of the form/);
  });
});

describe('loadCsv', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tessera-csv-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('shares the string label encoding between train and test files', async () => {
    await writeFile(join(dir, 'train.csv'), 'x,y\n1,b\n2,c\n');
    await writeFile(join(dir, 'test.csv'), 'x,y\n3,a\n');
    const { train, test } = await loadCsv(join(dir, 'train.csv'), { label: 'y', test: join(dir, 'test.csv') });
    expect(train.classNames).toEqual(['a', 'b', 'c']);
    expect([...train.labels]).toEqual([1, 2]);
    expect([...test.labels]).toEqual([0]);
    await writeFile(join(dir, 'other.csv'), 'z,y\n3,a\n');
    await expect(loadCsv(join(dir, 'train.csv'), { label: 'y', test: join(dir, 'other.csv') })).rejects.toThrow(/feature columns differ/);
  });

  it('holds out a split without a test file, and reports missing files', async () => {
    const rows = Array.from({ length: 50 }, (_, i) => `${i},${i % 3}`).join('\n');
    await writeFile(join(dir, 'all.csv'), `v,label\n${rows}\n`);
    const { train, test } = await loadCsv(join(dir, 'all.csv'), { heldOut: 10 });
    expect([train.n, test.n]).toEqual([40, 10]);
    const values = [...train.xs, ...test.xs].sort((a, b) => a - b);
    expect(values).toEqual(Array.from({ length: 50 }, (_, i) => i));
    await expect(loadCsv(join(dir, 'missing.csv'))).rejects.toMatchObject({ code: 'ERR_DATA_NOT_FOUND' });
  });
});
