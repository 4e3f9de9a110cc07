import { describe, expect, it } from 'vitest';
import { runPrivacyCommand } from './privacy-command.js';

async function run(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runPrivacyCommand(argv, (l) => out.push(l), (l) => err.push(l));
  return { code, out, err };
}

describe('tessera privacy', () => {
  it('epsilon prints one JSON line (dp_accounting vector: q=1, σ=4.530877117, δ=1e-6 → ε≈1)', async () => {
    const r = await run(['epsilon', '--q', '1', '--sigma', '4.530877117', '--steps', '1', '--delta', '1e-6']);
    expect(r.code).toBe(0);
    expect(r.out).toHaveLength(1);
    const parsed = JSON.parse(r.out[0] as string) as { epsilon: number; order: number };
    expect(parsed.epsilon).toBeCloseTo(1, 5);
    expect(parsed.order).toBe(22);
    expect(r.err).toEqual([]);
  });

  it('sigma inverts epsilon', async () => {
    const r = await run(['sigma', '--q', '0.01', '--steps', '1000', '--delta', '1e-5', '--epsilon', '2']);
    expect(r.code).toBe(0);
    const { noiseMultiplier } = JSON.parse(r.out[0] as string) as { noiseMultiplier: number };
    const back = await run(['epsilon', '--q', '0.01', '--sigma', String(noiseMultiplier), '--steps', '1000', '--delta', '1e-5']);
    const { epsilon } = JSON.parse(back.out[0] as string) as { epsilon: number };
    expect(epsilon).toBeLessThanOrEqual(2);
    expect(epsilon).toBeGreaterThan(1.999);
  });

  it('prints help with exit code 0', async () => {
    for (const argv of [['--help'], ['epsilon', '--help'], ['sigma', '-h']]) {
      const r = await run(argv);
      expect(r.code).toBe(0);
      expect(r.out[0]).toMatch(/^Usage: tessera privacy epsilon/);
    }
  });

  it.each([
    [[], /subcommand is required/],
    [['nope'], /unknown subcommand 'nope'/],
    [['epsilon', '--q', '0.01', '--sigma', '1', '--steps', '10'], /--delta is required/],
    [['epsilon', '--q', '2', '--sigma', '1', '--steps', '10', '--delta', '1e-5'], /--q must be a number in \[0, 1\], got '2'/],
    [['epsilon', '--q', '0.1', '--sigma', 'abc', '--steps', '10', '--delta', '1e-5'], /--sigma must be a number ≥ 0, got 'abc'/],
    [['epsilon', '--q', '0.1', '--sigma', '1', '--steps', '1.5', '--delta', '1e-5'], /--steps must be an integer/],
    [['epsilon', '--q', '0.1', '--sigma', '1', '--steps', '10', '--delta', '1'], /--delta must be a number in \(0, 1\)/],
    [['epsilon', '--q', '0.1', '--sigma', '1', '--steps', '10', '--delta', '1e-5', '--bogus', 'x'], /bogus/],
    [['sigma', '--q', '0.1', '--steps', '10', '--delta', '1e-5', '--epsilon', '0'], /--epsilon must be a number > 0/],
    [['sigma', '--q', '', '--steps', '10', '--delta', '1e-5', '--epsilon', '1'], /--q must be/],
  ])('%j is a usage error (exit 2)', async (argv, message) => {
    const r = await run(argv);
    expect(r.code).toBe(2);
    expect(r.out).toEqual([]);
    expect(r.err.join('\n')).toMatch(message);
    expect(r.err.join('\n')).toMatch(/tessera privacy --help/);
  });

  it('exits 1 when ε is unbounded', async () => {
    const r = await run(['epsilon', '--q', '0.1', '--sigma', '0', '--steps', '10', '--delta', '1e-5']);
    expect(r.code).toBe(1);
    expect(r.out).toEqual([]);
    expect(r.err[0]).toMatch(/unbounded/);
  });
});
