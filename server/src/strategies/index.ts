import { StrategyNames } from '@tessera/protocol';
import { FedAvg } from './fedavg.js';
import { registerStrategy } from './registry.js';

// The explicit list of built-in strategies (one file each); adding one is one line here.
registerStrategy(StrategyNames.FEDAVG, (o) => new FedAvg(typeof o.serverLearningRate === 'number' ? o.serverLearningRate : 1));

export { createStrategy, registeredStrategies, registerStrategy } from './registry.js';
export type { Strategy, FitResult, Failure, EvaluateRes, AggregateOutput, CandidateClient } from './strategy.js';
export { FedAvg } from './fedavg.js';
