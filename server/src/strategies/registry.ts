import { ErrorCode, StrategyNames, TesseraError, type StrategyName } from '@tessera/protocol';
import type { Strategy } from './strategy.js';

export type StrategyFactory = (options: Record<string, unknown>) => Strategy;

const registry = new Map<string, StrategyFactory>();
const KNOWN = new Set<string>(Object.values(StrategyNames));

/** Registers a strategy under a name exported by protocol; a duplicate registration throws. */
export function registerStrategy(name: StrategyName, factory: StrategyFactory): void {
  if (!KNOWN.has(name)) throw new Error(`strategy name '${name}' is not declared in @tessera/protocol StrategyNames`);
  if (registry.has(name)) throw new Error(`strategy '${name}' is already registered`);
  registry.set(name, factory);
}

/** Instantiates a registered strategy, or throws ERR_INVALID_CONFIG naming the known ones. */
export function createStrategy(name: string, options: Record<string, unknown> = {}): Strategy {
  const f = registry.get(name);
  if (!f) throw new TesseraError(ErrorCode.INVALID_CONFIG, `unknown strategy '${name}' (registered: ${[...registry.keys()].join(', ')})`);
  return f(options);
}

export function registeredStrategies(): string[] {
  return [...registry.keys()];
}
