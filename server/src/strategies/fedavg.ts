import { ErrorCode, TesseraError } from '@tessera/protocol';
import { weightedEvaluation, type AggregateOutput, type CandidateClient, type FitResult, type Strategy } from './strategy.js';

/**
 * FedAvg (McMahan et al. 2017): w ← w + Σ nᵢΔᵢ / Σ nᵢ, weighted by each client's example count.
 * Accumulates in float64 so the order of arrival does not change the result beyond rounding.
 */
export class FedAvg implements Strategy {
  readonly name: string = 'fedavg';
  /** Server learning rate applied to the averaged update (1 = plain FedAvg). */
  constructor(protected readonly serverLearningRate = 1) {}

  configureRound(_round: number, candidates: readonly CandidateClient[], size: number, pick: <T>(k: number, from: readonly T[]) => T[]): CandidateClient[] {
    return pick(Math.min(size, candidates.length), candidates);
  }

  aggregate(_round: number, global: Float32Array, results: readonly FitResult[]): AggregateOutput {
    if (results.length === 0) throw new TesseraError(ErrorCode.INTERNAL, 'aggregate called without results');
    const acc = new Float64Array(global.length);
    let total = 0;
    for (const r of results) {
      if (r.delta.length !== global.length) throw new TesseraError(ErrorCode.TENSOR_MISMATCH, `update of ${r.clientId} has ${r.delta.length} values, model ${global.length}`);
      const n = r.numExamples;
      total += n;
      const d = r.delta;
      for (let i = 0; i < d.length; i++) acc[i]! += n * d[i]!;
    }
    const out = new Float32Array(global.length);
    const s = this.serverLearningRate / total;
    for (let i = 0; i < out.length; i++) out[i] = global[i]! + s * acc[i]!;
    return { weights: out, metrics: { ...averageMetrics(results), clients: results.length, numExamples: total } };
  }

  configureEvaluate(_round: number, candidates: readonly CandidateClient[]): CandidateClient[] {
    return [...candidates];
  }

  aggregateEvaluate(_round: number, results: Parameters<Strategy['aggregateEvaluate']>[1]): Record<string, number> {
    return weightedEvaluation(results);
  }
}

/** Example-weighted mean of the clients' training metrics (e.g. loss, accuracy). */
export function averageMetrics(results: readonly FitResult[]): Record<string, number> {
  const sums = new Map<string, { v: number; n: number }>();
  for (const r of results) {
    for (const [k, v] of Object.entries(r.metrics)) {
      if (!Number.isFinite(v)) continue;
      const s = sums.get(k) ?? { v: 0, n: 0 };
      s.v += v * r.numExamples;
      s.n += r.numExamples;
      sums.set(k, s);
    }
  }
  return Object.fromEntries([...sums].map(([k, s]) => [`train_${k}`, s.v / s.n]));
}
