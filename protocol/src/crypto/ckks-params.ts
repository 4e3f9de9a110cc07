/**
 * CKKS parameters and the context that holds SEAL's long-lived objects.
 *
 * Default parameter set (addition-only workload, 128-bit security, SEAL's `tc128` table):
 *
 *   N (poly modulus degree) = 8192   → 4096 real slots per ciphertext
 *   coeff modulus           = [60, 60] bits (120 of the 218 bits tc128 allows at N = 8192)
 *   scale                   = 2^40
 *
 * Why:
 * - Only additions are done, so no multiplicative depth is needed: one *data* prime suffices.
 *   The second prime is SEAL's special (key-level) prime. Public-key encryption happens at
 *   the key level and is then mod-switched down, which divides the fresh encryption noise by
 *   that prime: measured max error per slot 7.6e-9 with [60, 60] vs 1.4e-7 with [60] alone.
 * - Fresh ciphertexts hold 2 polynomials × 1 data prime × N coefficients, each uniform mod q,
 *   so the wire cost is 2·N·60 bits per N/2 slots = 30 bytes per parameter after bit-packing
 *   (see ckks-wire.ts). Bytes/param ≈ (data modulus bits) / 2, independent of N.
 * - Scale 2^40 leaves 60 − 40 = 20 bits of integer range: decrypted slots are exact for
 *   |value| < q/(2·Δ) ≈ 2^19. `maxMagnitude` (q/(4·Δ) ≈ 262 144) keeps a 2× margin; the SUM
 *   over all clients of weight·update, and the sum of weights, must stay below it.
 * - N = 8192 rather than 4096: at N = 4096 tc128 allows 109 bits, so [50, 50] or [54, 54]
 *   fit, but the 50/54-bit data prime leaves only 2^9–2^13 of range at scale 2^40 (too small
 *   for an example-count sum), and bytes/param would be 25–27 only by giving up that range.
 *   N = 2048 allows 54 bits in total (one prime, no special prime). Per parameter, N = 4096
 *   and 8192 cost the same time and bytes; 8192 just makes fewer, larger ciphertexts.
 */
import type { CKKSEncoder, Evaluator, SEALContext } from 'node-seal';
import { CryptoError } from './errors.js';
import type { SealModule } from './seal-runtime.js';
import { sealCall, withSeal } from './seal-scope.js';

/** The numbers that define a CKKS task; server, clients and key holder must agree on them. */
export interface CkksParameters {
  /** Poly modulus degree N, a power of two; slots = N/2. */
  readonly polyModulusDegree: number;
  /** Bit sizes of the coefficient-modulus primes; the last one is the special prime. */
  readonly coeffModulusBits: readonly number[];
  /** log2 of the CKKS scale Δ. */
  readonly scaleBits: number;
}

/** N = 8192, [60, 60], Δ = 2^40 (see the comment at the top of this file). */
export const DEFAULT_CKKS_PARAMETERS: CkksParameters = Object.freeze({
  polyModulusDegree: 8192,
  coeffModulusBits: Object.freeze([60, 60]),
  scaleBits: 40,
});

/** SEAL's long-lived objects for one parameter set. Call `dispose()` when done. */
export interface CkksContext {
  readonly seal: SealModule;
  readonly params: CkksParameters;
  readonly context: SEALContext;
  readonly encoder: CKKSEncoder;
  readonly evaluator: Evaluator;
  /** Real values per ciphertext (N/2). */
  readonly slotCount: number;
  /** Δ = 2^scaleBits. */
  readonly scale: number;
  /** parms id of the level fresh ciphertexts live at (SEAL's "first" level), 4 words. */
  readonly parmsId: readonly bigint[];
  /** The primes of that level (all but the special prime). */
  readonly dataModuli: readonly bigint[];
  /** Bit length of each data prime: the width each residue is packed to on the wire. */
  readonly dataModulusBits: readonly number[];
  /** Largest |value| a decrypted slot may hold: q/(4·Δ), half the exact decoding range. */
  readonly maxMagnitude: number;
  dispose(): void;
}

function checkParameters(p: CkksParameters): void {
  const fail = (why: string): never => {
    throw new CryptoError('ERR_CKKS_PARAMETERS', `invalid CKKS parameters: ${why}`);
  };
  const n = p.polyModulusDegree;
  if (!Number.isInteger(n) || n < 1024 || n > 32768 || (n & (n - 1)) !== 0) {
    fail(`polyModulusDegree ${n} is not a power of two in [1024, 32768]`);
  }
  if (p.coeffModulusBits.length === 0) fail('coeffModulusBits is empty');
  for (const b of p.coeffModulusBits) {
    if (!Number.isInteger(b) || b < 20 || b > 60) fail(`modulus bit size ${b} is not an integer in [20, 60]`);
  }
  if (!Number.isInteger(p.scaleBits) || p.scaleBits < 20 || p.scaleBits > 60) {
    fail(`scaleBits ${p.scaleBits} is not an integer in [20, 60]`);
  }
}

/**
 * Builds a CKKS context at 128-bit security (`SecLevelType.tc128`) and checks SEAL accepted
 * the parameters; throws `CryptoError('ERR_CKKS_PARAMETERS')` otherwise.
 * @example
 * const { seal } = await loadSeal();
 * const ctx = createCkksContext(seal); // DEFAULT_CKKS_PARAMETERS
 * try { ... } finally { ctx.dispose(); }
 */
export function createCkksContext(seal: SealModule, params: CkksParameters = DEFAULT_CKKS_PARAMETERS): CkksContext {
  checkParameters(params);
  const frozen: CkksParameters = Object.freeze({
    polyModulusDegree: params.polyModulusDegree,
    coeffModulusBits: Object.freeze([...params.coeffModulusBits]),
    scaleBits: params.scaleBits,
  });
  const n = frozen.polyModulusDegree;
  const totalBits = frozen.coeffModulusBits.reduce((a, b) => a + b, 0);
  const maxBits = seal.CoeffModulus.MaxBitCount(n, seal.SecLevelType.tc128);
  const describe = `N=${n}, coeff modulus [${frozen.coeffModulusBits.join(', ')}] = ${totalBits} bits (tc128 allows ${maxBits})`;

  const context = withSeal((s) => {
    const parms = s.track(new seal.EncryptionParameters(seal.SchemeType.ckks));
    parms.setPolyModulusDegree(n);
    const moduli = s.track(
      sealCall('ERR_CKKS_PARAMETERS', `cannot create coeff modulus for ${describe}`, () =>
        seal.CoeffModulus.Create(n, Int32Array.from(frozen.coeffModulusBits)),
      ),
    );
    parms.setCoeffModulus(moduli);
    return sealCall('ERR_CKKS_PARAMETERS', `SEAL rejected ${describe}`, () => new seal.SEALContext(parms, true, seal.SecLevelType.tc128));
  });
  if (!context.parametersSet()) {
    context.delete();
    throw new CryptoError('ERR_CKKS_PARAMETERS', `SEAL rejected ${describe} at 128-bit security (tc128)`);
  }

  const level = withSeal((s) => {
    const data = s.track(context.firstContextData());
    const parmsIdHandle = s.track(data.parmsId());
    const vec = s.track(s.track(data.parms()).coeffModulus());
    const moduli: bigint[] = [];
    const bits: number[] = [];
    for (let i = 0; i < vec.size(); i++) {
      const m = vec.get(i);
      if (!m) continue;
      s.track(m);
      moduli.push(m.value());
      bits.push(m.bitCount());
    }
    return { parmsId: toBigInts(parmsIdHandle.values()), moduli, bits };
  });

  const scale = 2 ** frozen.scaleBits;
  const q = level.moduli.reduce((a, b) => a * b, 1n);
  const dataBits = level.bits.reduce((a, b) => a + b, 0);
  if (dataBits - 2 <= frozen.scaleBits) {
    context.delete();
    throw new CryptoError(
      'ERR_CKKS_PARAMETERS',
      `scale 2^${frozen.scaleBits} leaves no integer range in a ${dataBits}-bit data modulus (${describe})`,
    );
  }
  const encoder = new seal.CKKSEncoder(context);
  const evaluator = new seal.Evaluator(context);
  const ctx: CkksContext = {
    seal,
    params: frozen,
    context,
    encoder,
    evaluator,
    slotCount: encoder.slotCount(),
    scale,
    parmsId: Object.freeze(level.parmsId),
    dataModuli: Object.freeze(level.moduli),
    dataModulusBits: Object.freeze(level.bits),
    maxMagnitude: Number(q) / (4 * scale),
    dispose() {
      for (const o of [evaluator, encoder, context]) if (!o.isDeleted()) o.delete();
    },
  };
  return ctx;
}

/** Converts the `values()` of a SEAL `ParmsIdType` (a BigUint64Array) to plain bigints. */
export function toBigInts(values: unknown): bigint[] {
  if (values instanceof BigUint64Array) return Array.from(values);
  if (Array.isArray(values) && values.every((v) => typeof v === 'bigint')) return values as bigint[];
  throw new CryptoError('ERR_CKKS_PARAMETERS', 'unexpected parms id representation from node-seal');
}
