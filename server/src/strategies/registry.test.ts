import { ErrorCode, StrategyNames, TesseraError, type StrategyName } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import { FedAvg } from './fedavg.js';
// The index registers the built-in strategies, as the server does at startup.
import { createStrategy, registeredStrategies, registerStrategy } from './index.js';

describe('strategy registry', () => {
  it('registers every built-in name that protocol declares', () => {
    expect(registeredStrategies().sort()).toEqual(Object.values(StrategyNames).sort());
  });

  it('creates a registered strategy with its options', () => {
    const s = createStrategy('fedavg', { serverLearningRate: 0.5 });
    expect(s).toBeInstanceOf(FedAvg);
    expect(s.name).toBe('fedavg');
    // The option reached the strategy: half of the averaged delta [2] is applied.
    const out = s.aggregate(1, Float32Array.from([1]), [{ clientId: 'a', numExamples: 1, delta: Float32Array.from([2]), metrics: {} }], []);
    expect([...out.weights]).toEqual([2]);
    // A non-numeric option falls back to 1.
    const plain = createStrategy('fedavg', { serverLearningRate: 'fast' });
    expect([...plain.aggregate(1, Float32Array.from([1]), [{ clientId: 'a', numExamples: 1, delta: Float32Array.from([2]), metrics: {} }], []).weights]).toEqual([3]);
  });

  it('throws on a duplicate registration and keeps the first factory', () => {
    const marker = new FedAvg(7);
    expect(() => registerStrategy(StrategyNames.FEDAVG, () => marker)).toThrow(/'fedavg' is already registered/);
    expect(createStrategy('fedavg')).not.toBe(marker);
  });

  it('throws ERR_INVALID_CONFIG for an unknown strategy, naming the registered ones', () => {
    let err: unknown;
    try {
      createStrategy('fedprox');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TesseraError);
    expect((err as TesseraError).code).toBe(ErrorCode.INVALID_CONFIG);
    expect((err as TesseraError).message).toBe("unknown strategy 'fedprox' (registered: fedavg)");
  });

  it('refuses a name not declared in protocol’s StrategyNames, and does not register it', () => {
    expect(() => registerStrategy('my-strategy' as StrategyName, () => new FedAvg())).toThrow(/'my-strategy' is not declared in @tessera\/protocol StrategyNames/);
    expect(registeredStrategies()).not.toContain('my-strategy');
    expect(() => createStrategy('my-strategy')).toThrow(TesseraError);
  });
});
