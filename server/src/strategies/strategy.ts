/** One client's accepted training result, as the strategy sees it. */
export interface FitResult {
  clientId: string;
  numExamples: number;
  /** Δ = w_local − w_global, flattened in manifest order. */
  delta: Float32Array;
  metrics: Record<string, number>;
}

/** A cohort member that did not deliver: rejected, timed out or disconnected. */
export interface Failure {
  clientId: string;
  reason: string;
  code?: string;
}

export interface EvaluateRes {
  clientId: string;
  numExamples: number;
  loss: number;
  accuracy: number;
}

export interface AggregateOutput {
  /** The next global model, flattened. */
  weights: Float32Array;
  metrics: Record<string, number>;
}

/** Candidate client for a cohort. */
export interface CandidateClient {
  clientId: string;
  numTrainExamples: number;
}

/**
 * The strategy contract, shaped like Flower's: the server asks it whom to train, how to merge
 * the results (failures are passed in, never hidden) and how to merge evaluations.
 */
export interface Strategy {
  readonly name: string;
  /** Picks the cohort. `pick(k, from)` is the server's uniform sampler (crypto randomness). */
  configureRound(round: number, candidates: readonly CandidateClient[], size: number, pick: <T>(k: number, from: readonly T[]) => T[]): CandidateClient[];
  aggregate(round: number, global: Float32Array, results: readonly FitResult[], failures: readonly Failure[]): AggregateOutput;
  configureEvaluate(round: number, candidates: readonly CandidateClient[]): CandidateClient[];
  aggregateEvaluate(round: number, results: readonly EvaluateRes[], failures: readonly Failure[]): Record<string, number>;
}

/** Weighted by example count, as in FedAvg; shared by strategies that do not change evaluation. */
export function weightedEvaluation(results: readonly EvaluateRes[]): Record<string, number> {
  let n = 0;
  let loss = 0;
  let acc = 0;
  for (const r of results) {
    n += r.numExamples;
    loss += r.loss * r.numExamples;
    acc += r.accuracy * r.numExamples;
  }
  return n === 0 ? { numExamples: 0, clients: results.length } : { loss: loss / n, accuracy: acc / n, numExamples: n, clients: results.length };
}
