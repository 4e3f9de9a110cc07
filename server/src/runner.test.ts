import { describe, expect, it } from 'vitest';
import { pickUniform } from './runner.js';

/** Counts of each key over `draws` calls of `draw`. */
function tally(draws: number, draw: () => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < draws; i++) {
    const key = draw();
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/**
 * Asserts every one of `outcomes` occurred within 5 standard deviations of its binomial
 * expectation n·p (σ = √(n·p·(1−p))). A fair sampler fails one cell with probability < 6e-7.
 */
function expectUniform(counts: Map<string, number>, outcomes: string[], n: number): void {
  expect([...counts.keys()].sort()).toEqual([...outcomes].sort());
  const p = 1 / outcomes.length;
  const mean = n * p;
  const bound = 5 * Math.sqrt(n * p * (1 - p));
  for (const o of outcomes) {
    const c = counts.get(o) ?? 0;
    expect(Math.abs(c - mean), `outcome ${o}: ${c} of ${n}, expected ${mean} ± ${bound.toFixed(0)}`).toBeLessThan(bound);
  }
}

describe('pickUniform', () => {
  const items = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];

  it('returns k distinct items taken from the input, leaving the input untouched', () => {
    for (let k = 0; k <= items.length; k++) {
      for (let rep = 0; rep < 20; rep++) {
        const out = pickUniform(k, items);
        expect(out).toHaveLength(k);
        expect(new Set(out).size).toBe(k);
        for (const x of out) expect(items).toContain(x);
      }
    }
    expect(items).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
  });

  it('returns every item (a permutation) when k ≥ the number of items, and [] from nothing', () => {
    expect(pickUniform(10, items).sort()).toEqual(items);
    expect(pickUniform(3, [])).toEqual([]);
    expect(pickUniform(0, items)).toEqual([]);
  });

  it('keeps object identity (picks items, not copies)', () => {
    const objs = [{ id: 1 }, { id: 2 }, { id: 3 }];
    for (const o of pickUniform(2, objs)) expect(objs.includes(o)).toBe(true);
  });

  it('draws 1 of 4 uniformly (20k draws, each frequency within 5σ of 5000)', () => {
    const n = 20_000;
    expectUniform(
      tally(n, () => pickUniform(1, ['a', 'b', 'c', 'd'])[0]!),
      ['a', 'b', 'c', 'd'],
      n,
    );
  });

  it('draws 2 of 4 as a uniform subset (each of the 6 pairs within 5σ)', () => {
    const n = 30_000;
    const pairs = ['a,b', 'a,c', 'a,d', 'b,c', 'b,d', 'c,d'];
    expectUniform(
      tally(n, () => pickUniform(2, ['a', 'b', 'c', 'd']).sort().join(',')),
      pairs,
      n,
    );
  });

  it('shuffles 3 items into each of the 6 orders equally often (a naive swap-with-any shuffle would give 4/27 vs 5/27)', () => {
    const n = 30_000;
    const orders = ['abc', 'acb', 'bac', 'bca', 'cab', 'cba'];
    expectUniform(
      tally(n, () => pickUniform(3, ['a', 'b', 'c']).join('')),
      orders,
      n,
    );
  });
});
