import { ErrorCode, TesseraError } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import { averageMetrics, FedAvg } from './fedavg.js';
import type { CandidateClient, FitResult, Strategy } from './strategy.js';

/** Used through the Strategy contract, as the runner does (with its `failures` argument). */
const fedavg = (serverLearningRate?: number): Strategy => new FedAvg(serverLearningRate);

const global = Float32Array.from([1, 2, -1, 0.5]);

/** Client A: 1 example; client B: 3 examples. */
function results(): FitResult[] {
  return [
    { clientId: 'a', numExamples: 1, delta: Float32Array.from([1, 0, 2, -1]), metrics: { loss: 1, accuracy: 0.5 } },
    { clientId: 'b', numExamples: 3, delta: Float32Array.from([-1, 4, 2, 1]), metrics: { loss: 0.2, accuracy: 0.9 } },
  ];
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(TesseraError);
    return (e as TesseraError).code;
  }
  throw new Error('expected a TesseraError');
}

describe('FedAvg.aggregate', () => {
  it('adds the example-weighted mean of the deltas to the global model (exact on small vectors)', () => {
    // Σ nᵢΔᵢ = 1·[1,0,2,-1] + 3·[-1,4,2,1] = [-2,12,8,2]; / Σ nᵢ = 4 → [-0.5,3,2,0.5];
    // + global [1,2,-1,0.5] → [0.5,5,1,1].
    const out = fedavg().aggregate(1, global, results(), []);
    expect(out.weights).toBeInstanceOf(Float32Array);
    expect([...out.weights]).toEqual([0.5, 5, 1, 1]);
    // The global model passed in is not modified.
    expect([...global]).toEqual([1, 2, -1, 0.5]);
  });

  it('weights by numExamples, not by client (the unweighted mean would give [1,4,1,0.5])', () => {
    const equal = results().map((r) => ({ ...r, numExamples: 5 }));
    expect([...fedavg().aggregate(1, global, equal, []).weights]).toEqual([1, 4, 1, 0.5]);
    const heavyA = results().map((r) => ({ ...r, numExamples: r.clientId === 'a' ? 3 : 1 }));
    // (3·[1,0,2,-1] + [-1,4,2,1]) / 4 = [0.5,1,2,-0.5] → [1.5,3,1,0]
    expect([...fedavg().aggregate(1, global, heavyA, []).weights]).toEqual([1.5, 3, 1, 0]);
  });

  it('accumulates in float64, so cancelling large deltas do not swallow small ones in any arrival order', () => {
    // In float32, 1e8 + 1 rounds back to 1e8 (spacing 8) and the small delta would be lost in
    // some orders; in float64 every order gives (1e8 + 1 − 1e8) / 3 = 1/3.
    const rs: FitResult[] = [
      { clientId: 'a', numExamples: 1, delta: Float32Array.from([1e8]), metrics: {} },
      { clientId: 'b', numExamples: 1, delta: Float32Array.from([1]), metrics: {} },
      { clientId: 'c', numExamples: 1, delta: Float32Array.from([-1e8]), metrics: {} },
    ];
    const orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
    for (const o of orders) {
      const out = fedavg().aggregate(1, new Float32Array(1), o.map((i) => rs[i]!), []);
      expect(out.weights[0]).toBe(Math.fround(1 / 3));
    }
  });

  it('a single client moves the model by its whole delta', () => {
    const [a] = results();
    expect([...fedavg().aggregate(1, global, [a!], []).weights]).toEqual([2, 2, 1, -0.5]);
  });

  it('scales the averaged update by the server learning rate', () => {
    // global + 0.5·[-0.5,3,2,0.5] = [0.75,3.5,0,0.75]
    expect([...fedavg(0.5).aggregate(1, global, results(), []).weights]).toEqual([0.75, 3.5, 0, 0.75]);
  });

  it('reports example-weighted train metrics, the client count and the example total', () => {
    const { metrics } = fedavg().aggregate(1, global, results(), []);
    expect(Object.keys(metrics).sort()).toEqual(['clients', 'numExamples', 'train_accuracy', 'train_loss']);
    // loss (1·1 + 3·0.2)/4 = 0.4; accuracy (1·0.5 + 3·0.9)/4 = 0.8
    expect(metrics.train_loss).toBeCloseTo(0.4, 12);
    expect(metrics.train_accuracy).toBeCloseTo(0.8, 12);
    expect(metrics.clients).toBe(2);
    expect(metrics.numExamples).toBe(4);
  });

  it('throws ERR_TENSOR_MISMATCH on a delta of the wrong length, naming the client', () => {
    const bad = [...results(), { clientId: 'c', numExamples: 2, delta: new Float32Array(3), metrics: {} }];
    expect(codeOf(() => fedavg().aggregate(1, global, bad, []))).toBe(ErrorCode.TENSOR_MISMATCH);
    expect(() => fedavg().aggregate(1, global, bad, [])).toThrow(/update of c has 3 values, model 4/);
    const long = [{ clientId: 'd', numExamples: 1, delta: new Float32Array(5), metrics: {} }];
    expect(codeOf(() => fedavg().aggregate(1, global, long, []))).toBe(ErrorCode.TENSOR_MISMATCH);
  });

  it('throws ERR_INTERNAL when called without results', () => {
    expect(codeOf(() => fedavg().aggregate(1, global, [], [{ clientId: 'a', reason: 'timeout' }]))).toBe(ErrorCode.INTERNAL);
  });
});

describe('averageMetrics', () => {
  it('weights each metric by the examples of the clients that reported it, skipping non-finite values', () => {
    const rs: FitResult[] = [
      { clientId: 'a', numExamples: 1, delta: new Float32Array(0), metrics: { loss: Number.NaN, lr: 0.5 } },
      { clientId: 'b', numExamples: 3, delta: new Float32Array(0), metrics: { loss: 0.25 } },
      { clientId: 'c', numExamples: 4, delta: new Float32Array(0), metrics: { loss: 1, lr: Number.POSITIVE_INFINITY } },
    ];
    // loss: (3·0.25 + 4·1) / 7 = 4.75/7; lr: only a's finite value.
    expect(averageMetrics(rs)).toEqual({ train_loss: 4.75 / 7, train_lr: 0.5 });
  });

  it('is empty without metrics', () => {
    expect(averageMetrics([{ clientId: 'a', numExamples: 1, delta: new Float32Array(0), metrics: {} }])).toEqual({});
  });
});

describe('FedAvg cohort and evaluation', () => {
  const candidates: CandidateClient[] = [
    { clientId: 'a', numTrainExamples: 10 },
    { clientId: 'b', numTrainExamples: 20 },
    { clientId: 'c', numTrainExamples: 30 },
  ];

  it('configureRound asks the sampler for min(size, candidates) clients', () => {
    const asked: number[] = [];
    const pick = <T>(k: number, from: readonly T[]): T[] => {
      asked.push(k);
      return from.slice(0, k);
    };
    expect(fedavg().configureRound(1, candidates, 2, pick).map((c) => c.clientId)).toEqual(['a', 'b']);
    expect(fedavg().configureRound(1, candidates, 10, pick).map((c) => c.clientId)).toEqual(['a', 'b', 'c']);
    expect(asked).toEqual([2, 3]);
  });

  it('configureEvaluate returns all candidates as a copy', () => {
    const out = fedavg().configureEvaluate(1, candidates);
    expect(out).toEqual(candidates);
    expect(out).not.toBe(candidates);
  });

  it('aggregateEvaluate weights loss and accuracy by numExamples', () => {
    const out = fedavg().aggregateEvaluate(
      1,
      [
        { clientId: 'a', numExamples: 1, loss: 2, accuracy: 0.5 },
        { clientId: 'b', numExamples: 3, loss: 1, accuracy: 1 },
      ],
      [],
    );
    // loss (2 + 3)/4 = 1.25; accuracy (0.5 + 3)/4 = 0.875
    expect(out).toEqual({ loss: 1.25, accuracy: 0.875, numExamples: 4, clients: 2 });
    expect(fedavg().aggregateEvaluate(1, [], [{ clientId: 'a', reason: 'gone' }])).toEqual({ numExamples: 0, clients: 0 });
  });
});
