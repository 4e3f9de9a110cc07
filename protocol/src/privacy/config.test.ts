import { describe, expect, it } from 'vitest';
import { privacyConfigSchema } from './config.js';

/** The messages of all issues a config raises, with their paths. */
function issues(input: unknown): string[] {
  const result = privacyConfigSchema.safeParse(input);
  if (result.success) return [];
  return result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('privacyConfigSchema', () => {
  it('accepts complete and minimal configs', () => {
    const full = {
      mode: 'central',
      noiseMultiplier: 1.1,
      clipNorm: 0.5,
      adaptiveClip: { targetQuantile: 0.5, learningRate: 0.2, initialClip: 0.1 },
      budget: { epsilon: 8, delta: 1e-5 },
    };
    expect(privacyConfigSchema.parse(full)).toEqual(full);
    expect(privacyConfigSchema.parse({ mode: 'off', noiseMultiplier: 0, clipNorm: 1 })).toEqual({
      mode: 'off',
      noiseMultiplier: 0,
      clipNorm: 1,
    });
    expect(privacyConfigSchema.parse({ mode: 'distributed', noiseMultiplier: 1, clipNorm: 1, adaptiveClip: true }))
      .toMatchObject({ adaptiveClip: true });
    expect(privacyConfigSchema.parse({ mode: 'local', noiseMultiplier: 1, clipNorm: 1, adaptiveClip: {} }))
      .toMatchObject({ adaptiveClip: {} });
  });

  it('requires clipNorm > 0', () => {
    expect(issues({ mode: 'off', noiseMultiplier: 0, clipNorm: 0 })).toEqual(['clipNorm: clipNorm must be > 0']);
    expect(issues({ mode: 'central', noiseMultiplier: 1, clipNorm: -1 })).toEqual(['clipNorm: clipNorm must be > 0']);
  });

  it('requires noiseMultiplier > 0 unless mode is off', () => {
    for (const mode of ['central', 'distributed', 'local']) {
      expect(issues({ mode, noiseMultiplier: 0, clipNorm: 1 })).toEqual([
        `noiseMultiplier: noiseMultiplier must be > 0 when mode is '${mode}'`,
      ]);
    }
    expect(issues({ mode: 'off', noiseMultiplier: -1, clipNorm: 1 })).toEqual([
      'noiseMultiplier: noiseMultiplier must be >= 0',
    ]);
  });

  it('requires 0 < δ < 1 and ε > 0 in a budget', () => {
    const base = { mode: 'central', noiseMultiplier: 1, clipNorm: 1 };
    expect(issues({ ...base, budget: { epsilon: 1, delta: 0 } })).toEqual(['budget.delta: budget.delta must be in (0, 1)']);
    expect(issues({ ...base, budget: { epsilon: 1, delta: 1 } })).toEqual(['budget.delta: budget.delta must be in (0, 1)']);
    expect(issues({ ...base, budget: { epsilon: 0, delta: 1e-5 } })).toEqual(['budget.epsilon: budget.epsilon must be > 0']);
    expect(issues({ ...base, budget: { epsilon: -2, delta: 2 } })).toHaveLength(2);
  });

  it('checks adaptive clipping parameters', () => {
    const base = { mode: 'central', noiseMultiplier: 1, clipNorm: 1 };
    expect(issues({ ...base, adaptiveClip: { targetQuantile: 1 } })).toEqual([
      'adaptiveClip.targetQuantile: adaptiveClip.targetQuantile must be in (0, 1)',
    ]);
    expect(issues({ ...base, adaptiveClip: { learningRate: 0 } })).toEqual([
      'adaptiveClip.learningRate: adaptiveClip.learningRate must be > 0',
    ]);
    expect(issues({ ...base, adaptiveClip: { initialClip: -0.1 } })).toEqual([
      'adaptiveClip.initialClip: adaptiveClip.initialClip must be > 0',
    ]);
    expect(issues({ ...base, adaptiveClip: 'yes' })).toHaveLength(1);
  });

  it('rejects non-finite numbers, unknown modes and unknown keys', () => {
    expect(issues({ mode: 'central', noiseMultiplier: Number.POSITIVE_INFINITY, clipNorm: 1 })).toHaveLength(1);
    expect(issues({ mode: 'central', noiseMultiplier: 1, clipNorm: Number.NaN })).toHaveLength(1);
    expect(issues({ mode: 'sometimes', noiseMultiplier: 1, clipNorm: 1 })[0]).toMatch(/^mode: /);
    // A typo must not pass silently (the intended setting would be ignored).
    expect(issues({ mode: 'central', noiseMultiplier: 1, clipNorm: 1, noise_multiplier: 2 })).toHaveLength(1);
    expect(issues({ mode: 'central', noiseMultiplier: 1, clipNorm: 1, budget: { epsilon: 1, delta: 1e-5, eps: 1 } }))
      .toHaveLength(1);
    expect(issues({ noiseMultiplier: 1, clipNorm: 1 })[0]).toMatch(/^mode: /);
  });
});
