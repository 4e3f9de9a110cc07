import { epsilonFor, noiseMultiplierFor } from '@tessera/protocol';
import { parseFlags, UsageError } from './args.js';

export const PRIVACY_HELP = `Usage: tessera privacy epsilon --q Q --sigma Z --steps T --delta D
       tessera privacy sigma   --q Q --steps T --delta D --epsilon E

RDP accounting of the sampled Gaussian mechanism (DP-FedAvg / DP-SGD), as Opacus and
Google's dp_accounting compute it. Prints one JSON line.

  epsilon      the ε spent after T rounds: {"epsilon":…,"order":…}
  sigma        the smallest noise multiplier that stays within ε: {"noiseMultiplier":…}

  --q Q        sampling rate per round, in [0, 1] (cohort size / population)
  --sigma Z    noise multiplier: noise std / clip norm, ≥ 0
  --steps T    number of rounds, an integer ≥ 0
  --delta D    target δ, in (0, 1)
  --epsilon E  target ε, > 0`;

/** A flag's value as a number, or a usage error naming the flag and the accepted range. */
function numberArg(
  value: string | undefined,
  name: string,
  range: string,
  accept: (n: number) => boolean,
): number {
  if (value === undefined) throw new UsageError(`--${name} is required`);
  const n = value.trim() === '' ? Number.NaN : Number(value);
  if (!Number.isFinite(n) || !accept(n)) throw new UsageError(`--${name} must be ${range}, got '${value}'`);
  return n;
}

const q = (v: string | undefined): number => numberArg(v, 'q', 'a number in [0, 1]', (n) => n >= 0 && n <= 1);
const steps = (v: string | undefined): number =>
  numberArg(v, 'steps', 'an integer ≥ 0', (n) => Number.isSafeInteger(n) && n >= 0);
const delta = (v: string | undefined): number =>
  numberArg(v, 'delta', 'a number in (0, 1)', (n) => n > 0 && n < 1);

/**
 * `tessera privacy epsilon|sigma`: prints one JSON line to `out`; returns the exit code
 * (0 done, 1 no answer exists, 2 bad arguments, with the message on `err`).
 * @example await runPrivacyCommand(['epsilon', '--q', '0.01', '--sigma', '1.1', '--steps', '1000', '--delta', '1e-5'], console.log)
 */
export async function runPrivacyCommand(
  argv: string[],
  out: (line: string) => void,
  err: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    if (sub === undefined) throw new UsageError('a subcommand is required: epsilon or sigma');
    if (sub === '--help' || sub === '-h' || sub === 'help') {
      out(PRIVACY_HELP);
      return 0;
    }
    if (sub === 'epsilon') {
      const f = parseFlags(rest, {
        q: { type: 'string' },
        sigma: { type: 'string' },
        steps: { type: 'string' },
        delta: { type: 'string' },
      });
      if (f.help) {
        out(PRIVACY_HELP);
        return 0;
      }
      const spent = epsilonFor({
        q: q(f.q),
        noiseMultiplier: numberArg(f.sigma, 'sigma', 'a number ≥ 0', (n) => n >= 0),
        steps: steps(f.steps),
        delta: delta(f.delta),
      });
      // JSON has no ∞: say so instead of printing null.
      if (!Number.isFinite(spent.epsilon)) {
        err('tessera privacy: epsilon is unbounded (no noise, or no RDP order gives a finite bound)');
        return 1;
      }
      out(JSON.stringify({ epsilon: spent.epsilon, order: spent.order }));
      return 0;
    }
    if (sub === 'sigma') {
      const f = parseFlags(rest, {
        q: { type: 'string' },
        steps: { type: 'string' },
        delta: { type: 'string' },
        epsilon: { type: 'string' },
      });
      if (f.help) {
        out(PRIVACY_HELP);
        return 0;
      }
      const options = {
        q: q(f.q),
        steps: steps(f.steps),
        delta: delta(f.delta),
        targetEpsilon: numberArg(f.epsilon, 'epsilon', 'a number > 0', (n) => n > 0),
      };
      let noiseMultiplier: number;
      try {
        noiseMultiplier = noiseMultiplierFor(options);
      } catch (e) {
        // Arguments were valid; the target is out of reach (e.g. ε tiny for many full-batch rounds).
        if (e instanceof RangeError) {
          err(`tessera privacy: ${e.message}`);
          return 1;
        }
        throw e;
      }
      out(JSON.stringify({ noiseMultiplier }));
      return 0;
    }
    throw new UsageError(`unknown subcommand '${sub}': use epsilon or sigma`);
  } catch (e) {
    if (e instanceof UsageError) {
      err(`tessera privacy: ${e.message}\nRun 'tessera privacy --help' for usage.`);
      return 2;
    }
    throw e;
  }
}
