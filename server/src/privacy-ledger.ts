import { AdaptiveClip, gaussianNoise, noiseStdFor, RdpAccountant, type PrivacyConfig, type PrivacySpent } from '@tessera/protocol';
import type { LedgerEntry, Store } from './db.js';

const DEFAULT_DELTA = 1e-5;

/** What a client is told to do in a round (RoundStart.privacy). */
export interface RoundPrivacy {
  mode: 'central' | 'distributed' | 'local';
  clipNorm: number;
  noiseStd: number;
}

/**
 * A task's privacy state on the server: the RDP accountant rebuilt from the persisted ledger,
 * the (possibly adaptive) clip norm, the noise each party adds, and the budget check.
 * Accounting is per completed round (a released aggregate) with the sampled Gaussian mechanism at
 * noise multiplier z and sampling rate q = cohort / eligible clients (q = 1 when all take part).
 */
export class PrivacyLedger {
  readonly config: PrivacyConfig & { mode: 'central' | 'distributed' | 'local' };
  readonly delta: number;
  private readonly accountant = new RdpAccountant();
  private readonly adaptive: AdaptiveClip | undefined;
  private clip: number;
  /** Why the task was stopped by the budget, if it was. */
  stopped: { code: 'ERR_PRIVACY_BUDGET'; reason: string } | undefined;

  constructor(
    private readonly store: Store,
    private readonly taskId: string,
    config: PrivacyConfig,
    private readonly expectedClients: number,
    private readonly minClients: number,
  ) {
    if (config.mode === 'off') throw new Error('PrivacyLedger needs a DP mode');
    this.config = config as PrivacyConfig & { mode: 'central' | 'distributed' | 'local' };
    this.delta = config.budget?.delta ?? config.delta ?? DEFAULT_DELTA;
    const entries = store.ledger(taskId);
    for (const e of entries) this.accountant.step(e.samplingRate, e.noiseMultiplier);
    const ac = config.adaptiveClip;
    const initial = typeof ac === 'object' && ac.initialClip !== undefined ? ac.initialClip : config.clipNorm;
    this.clip = entries.at(-1)?.nextClipNorm ?? initial;
    if (ac) {
      this.adaptive = new AdaptiveClip({
        expectedClients,
        initialClip: this.clip,
        ...(typeof ac === 'object' && ac.learningRate !== undefined ? { learningRate: ac.learningRate } : {}),
        ...(typeof ac === 'object' && ac.targetQuantile !== undefined ? { targetQuantile: ac.targetQuantile } : {}),
      });
    }
  }

  /** z for the updates: z itself, or z_Δ = (z⁻² − (2σ_b)⁻²)^(−1/2) when the clip bits are released too. */
  get updateNoiseMultiplier(): number {
    return this.adaptive ? this.adaptive.noiseMultiplierForUpdates(this.config.noiseMultiplier) : this.config.noiseMultiplier;
  }

  get clipNorm(): number {
    return this.clip;
  }

  /** The clipping and client-side noise for the next round. */
  roundPrivacy(): RoundPrivacy {
    const mode = this.config.mode;
    return { mode, clipNorm: this.clip, noiseStd: mode === 'central' ? 0 : noiseStdFor(mode, this.updateNoiseMultiplier, this.clip, this.minClients) };
  }

  /** Noise the server adds to the sum of clipped updates (central mode only). */
  centralNoise(n: number): Float64Array | undefined {
    if (this.config.mode !== 'central') return undefined;
    return gaussianNoise(n, this.updateNoiseMultiplier * this.clip);
  }

  spent(): PrivacySpent {
    return this.accountant.steps === 0 ? { epsilon: 0, order: NaN } : this.accountant.getPrivacySpent(this.delta);
  }

  /** ε after one more round at sampling rate q, and whether that would break the budget. */
  preview(q: number): { epsilon: number; exceeds: boolean } {
    const next = RdpAccountant.fromJSON(this.accountant.toJSON()).step(q, this.config.noiseMultiplier);
    const epsilon = next.getEpsilon(this.delta);
    return { epsilon, exceeds: this.config.budget !== undefined && epsilon > this.config.budget.epsilon };
  }

  /** Accounts a completed round; returns the ledger entry to persist with it. */
  account(q: number, belowClipBits: readonly boolean[]): Omit<LedgerEntry, 'roundId'> {
    const used = this.clip;
    this.accountant.step(q, this.config.noiseMultiplier);
    if (this.adaptive) this.clip = this.adaptive.update(belowClipBits.map((b) => (b ? 1 : 0)));
    const s = this.accountant.getPrivacySpent(this.delta);
    return { samplingRate: q, noiseMultiplier: this.config.noiseMultiplier, clipNorm: used, nextClipNorm: this.clip, epsilon: s.epsilon, delta: this.delta, order: Number.isFinite(s.order) ? s.order : null };
  }

  /** The REST view (GET /api/tasks/:id/privacy). */
  report() {
    const s = this.spent();
    return {
      mode: this.config.mode,
      noiseMultiplier: this.config.noiseMultiplier,
      updateNoiseMultiplier: this.updateNoiseMultiplier,
      clipNorm: this.clip,
      adaptiveClip: Boolean(this.adaptive),
      weighting: 'uniform (fixed denominator = clientsPerRound)',
      expectedClients: this.expectedClients,
      budget: this.config.budget ?? null,
      spent: { epsilon: s.epsilon, delta: this.delta, order: Number.isFinite(s.order) ? s.order : null, rounds: this.accountant.steps },
      stopped: this.stopped ?? null,
      rounds: this.store.ledger(this.taskId),
    };
  }
}
