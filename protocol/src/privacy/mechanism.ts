/**
 * Client-level differential privacy for federated averaging (DP-FedAvg, McMahan, Ramage, Talwar,
 * Zhang 2018, "Learning Differentially Private Recurrent Language Models"): each client's update
 * is clipped to L2 norm C, and Gaussian noise of std z·C is added to the sum, so one client's
 * whole contribution has sensitivity C and the accountant sees noise multiplier z.
 *
 * Randomness comes only from `globalThis.crypto.getRandomValues` (Node 24 and browsers alike).
 * The samples are floating-point Gaussians, as in Opacus and TF Privacy; they are not hardened
 * against floating-point side channels the way a discrete Gaussian would be.
 */

/** L2 norm of all tensors taken together as one flattened vector, accumulated in float64. */
export function l2Norm(vectors: readonly Float32Array[]): number {
  let sumSquares = 0;
  for (const v of vectors) {
    for (let i = 0; i < v.length; i++) {
      const x = v[i] as number;
      sumSquares += x * x;
    }
  }
  return Math.sqrt(sumSquares);
}

/** What {@link clipInPlace} did: the norm before clipping and the factor applied. */
export interface ClipResult {
  norm: number;
  scale: number;
  clipped: boolean;
}

/**
 * Scales all tensors together by min(1, C/‖v‖) so their joint L2 norm is at most C.
 * Throws on a non-finite norm: NaN or ∞ cannot be clipped and would break the sensitivity bound.
 */
export function clipInPlace(vectors: Float32Array[], clipNorm: number): ClipResult {
  if (!(clipNorm > 0 && Number.isFinite(clipNorm))) {
    throw new RangeError(`clip norm must be a finite number > 0, got ${clipNorm}`);
  }
  const norm = l2Norm(vectors);
  if (!Number.isFinite(norm)) throw new RangeError(`cannot clip an update whose norm is ${norm}`);
  if (norm <= clipNorm) return { norm, scale: 1, clipped: false };
  const scale = clipNorm / norm;
  for (const v of vectors) {
    for (let i = 0; i < v.length; i++) v[i] = (v[i] as number) * scale;
  }
  return { norm, scale, clipped: true };
}

// getRandomValues fills at most 65536 bytes per call (Web Crypto's QuotaExceededError).
const MAX_WORDS_PER_CALL = 65536 / 4;
// Each pair of normals uses two 53-bit uniforms, i.e. four 32-bit words.
const PAIRS_PER_BATCH = MAX_WORDS_PER_CALL / 4;
const TWO_POW_26 = 2 ** 26;
const TWO_POW_53 = 2 ** 53;

/** Fills `words` with random 32-bit values, 64 KiB per getRandomValues call. */
function fillRandom(words: Uint32Array): void {
  for (let offset = 0; offset < words.length; offset += MAX_WORDS_PER_CALL) {
    globalThis.crypto.getRandomValues(words.subarray(offset, offset + MAX_WORDS_PER_CALL));
  }
}

/**
 * Passes `n` independent N(0, std²) samples to `write(index, value)`, by Box–Muller.
 * Uniforms are 53-bit: the top 27 bits of one word and the top 26 of the next.
 */
function sampleGaussians(n: number, std: number, write: (index: number, value: number) => void): void {
  const words = new Uint32Array(MAX_WORDS_PER_CALL);
  let written = 0;
  while (written < n) {
    const pairs = Math.min(PAIRS_PER_BATCH, Math.ceil((n - written) / 2));
    const batch = words.subarray(0, pairs * 4);
    fillRandom(batch);
    for (let p = 0; p < pairs; p++) {
      const k1 = ((batch[4 * p] as number) >>> 5) * TWO_POW_26 + ((batch[4 * p + 1] as number) >>> 6);
      const k2 = ((batch[4 * p + 2] as number) >>> 5) * TWO_POW_26 + ((batch[4 * p + 3] as number) >>> 6);
      // u1 ∈ (0, 1]: 0 is excluded so log(u1) is finite; u2 ∈ [0, 1) for the angle.
      const u1 = (k1 + 1) / TWO_POW_53;
      const u2 = k2 / TWO_POW_53;
      const radius = std * Math.sqrt(-2 * Math.log(u1));
      const angle = 2 * Math.PI * u2;
      write(written++, radius * Math.cos(angle));
      if (written < n) write(written++, radius * Math.sin(angle));
    }
  }
}

function checkStd(std: number): void {
  if (!(std >= 0 && Number.isFinite(std))) throw new RangeError(`noise std must be a finite number >= 0, got ${std}`);
}

/** `n` independent samples of N(0, std²) from crypto.getRandomValues. */
export function gaussianNoise(n: number, std: number): Float64Array {
  if (!(Number.isSafeInteger(n) && n >= 0)) throw new RangeError(`sample count must be an integer >= 0, got ${n}`);
  checkStd(std);
  const out = new Float64Array(n);
  if (std > 0) {
    sampleGaussians(n, std, (i, x) => {
      out[i] = x;
    });
  }
  return out;
}

/** Adds independent N(0, std²) noise to every element of every tensor. */
export function addGaussianNoiseInPlace(vectors: Float32Array[], std: number): void {
  checkStd(std);
  if (std === 0) return;
  for (const v of vectors) {
    // Sampled tensor by tensor, so memory stays bounded by the random-word buffer.
    sampleGaussians(v.length, std, (i, x) => {
      v[i] = (v[i] as number) + x;
    });
  }
}

/** Where DP noise is added: by the server, spread over clients under secure aggregation, or per client. */
export type NoiseMode = 'central' | 'distributed' | 'local';

/**
 * Standard deviation of the Gaussian noise one party adds for noise multiplier z and clip norm C.
 * central: the server adds z·C once to the sum. distributed: each of at least `minClients` = t
 * clients adds z·C/√t, so any t honest shares sum to std z·C (requires secure aggregation, else
 * the server sees each share with too little noise). local: each client adds z·C to its own update.
 * @example noiseStdFor('distributed', 1.1, 0.5, 100) // 0.055
 */
export function noiseStdFor(mode: NoiseMode, z: number, clipNorm: number, minClients: number): number {
  if (!(z >= 0 && Number.isFinite(z))) throw new RangeError(`noise multiplier must be a finite number >= 0, got ${z}`);
  if (!(clipNorm > 0 && Number.isFinite(clipNorm))) {
    throw new RangeError(`clip norm must be a finite number > 0, got ${clipNorm}`);
  }
  switch (mode) {
    case 'central':
    case 'local':
      return z * clipNorm;
    case 'distributed':
      if (!(Number.isSafeInteger(minClients) && minClients >= 1)) {
        throw new RangeError(`minClients must be an integer >= 1 for distributed noise, got ${minClients}`);
      }
      return (z * clipNorm) / Math.sqrt(minClients);
    default: {
      const unknown: never = mode;
      throw new RangeError(`unknown noise mode ${String(unknown)}`);
    }
  }
}

/** Tunables of {@link AdaptiveClip}; defaults from Andrew et al. 2021. */
export interface AdaptiveClipOptions {
  /** Expected number of clients per round, m. Required: it sets the denominator and σ_b. */
  expectedClients: number;
  /** Starting clip norm C0; default 0.1. */
  initialClip?: number;
  /** Geometric learning rate η; default 0.2. */
  learningRate?: number;
  /** Target quantile γ of update norms; default 0.5 (the median). */
  targetQuantile?: number;
  /** Std σ_b of the noise on the count of unclipped clients; default m/20. */
  bitNoiseStd?: number;
}

/**
 * Adaptive clipping to a quantile of the update norms (Andrew, Thakkar, McMahan, Ramaswamy 2021,
 * "Differentially Private Learning with Adaptive Clipping", Alg. 1 with the geometric update).
 * Each round clients report bᵢ = 1 if ‖Δᵢ‖ ≤ C; the server forms the noised fraction
 * b̃ = (Σ(bᵢ − ½) + N(0, σ_b²))/m + ½ (= (Σbᵢ + N(0, σ_b²))/m for a cohort of exactly m) and sets
 * C ← C·exp(−η(b̃ − γ)).
 * The bit-count release costs privacy too: run the updates with {@link noiseMultiplierForUpdates}
 * so the total stays at the z the accountant is given.
 */
export class AdaptiveClip {
  readonly expectedClients: number;
  readonly learningRate: number;
  readonly targetQuantile: number;
  readonly bitNoiseStd: number;
  #clipNorm: number;

  constructor(options: AdaptiveClipOptions) {
    const { expectedClients } = options;
    const initialClip = options.initialClip ?? 0.1;
    const learningRate = options.learningRate ?? 0.2;
    const targetQuantile = options.targetQuantile ?? 0.5;
    const bitNoiseStd = options.bitNoiseStd ?? expectedClients / 20;
    if (!(expectedClients > 0 && Number.isFinite(expectedClients))) {
      throw new RangeError(`expectedClients must be a finite number > 0, got ${expectedClients}`);
    }
    if (!(initialClip > 0 && Number.isFinite(initialClip))) {
      throw new RangeError(`initialClip must be a finite number > 0, got ${initialClip}`);
    }
    if (!(learningRate > 0 && Number.isFinite(learningRate))) {
      throw new RangeError(`learningRate must be a finite number > 0, got ${learningRate}`);
    }
    if (!(targetQuantile > 0 && targetQuantile < 1)) {
      throw new RangeError(`targetQuantile must be in (0, 1), got ${targetQuantile}`);
    }
    if (!(bitNoiseStd >= 0 && Number.isFinite(bitNoiseStd))) {
      throw new RangeError(`bitNoiseStd must be a finite number >= 0, got ${bitNoiseStd}`);
    }
    this.expectedClients = expectedClients;
    this.learningRate = learningRate;
    this.targetQuantile = targetQuantile;
    this.bitNoiseStd = bitNoiseStd;
    this.#clipNorm = initialClip;
  }

  /** Current clip norm C. */
  get clipNorm(): number {
    return this.#clipNorm;
  }

  /** One round's update from the clients' bits (1 if their norm was ≤ C); returns the new C. */
  update(bits: readonly number[]): number {
    let count = 0;
    for (const b of bits) {
      if (b !== 0 && b !== 1) throw new RangeError(`clip indicator bits must be 0 or 1, got ${b}`);
      count += b;
    }
    const noise = this.bitNoiseStd > 0 ? (gaussianNoise(1, this.bitNoiseStd)[0] as number) : 0;
    // The released sum is Σ(bᵢ − ½) + N(0, σ_b²): centring halves its sensitivity to ½, which is
    // what the (2σ_b)⁻² term of updateNoiseMultiplier assumes (as TF Privacy's
    // QuantileEstimatorQuery). It divides by the expected m, not bits.length, since the cohort
    // size is not itself released privately; with exactly m bits this is (Σbᵢ + noise)/m.
    const centred = count - bits.length / 2 + noise;
    // Clamped to [0, 1] like TF Privacy, so one noisy round cannot move C by more than e^{±η}.
    const fraction = Math.min(1, Math.max(0, centred / this.expectedClients + 0.5));
    this.#clipNorm *= Math.exp(-this.learningRate * (fraction - this.targetQuantile));
    return this.#clipNorm;
  }

  /**
   * Noise multiplier z_Δ for the model updates such that updates plus bit counts together are
   * equivalent to one Gaussian mechanism with multiplier z (Andrew et al. 2021, Sec. 3.1):
   * z_Δ = (z⁻² − (2σ_b)⁻²)^(−1/2). Throws when σ_b is too small for z (2σ_b ≤ z).
   * @example AdaptiveClip.updateNoiseMultiplier(1, 100) // σ_b = 5 → ≈ 1.0050
   */
  static updateNoiseMultiplier(z: number, expectedClients: number, bitNoiseStd = expectedClients / 20): number {
    if (!(z > 0 && Number.isFinite(z))) throw new RangeError(`noise multiplier must be a finite number > 0, got ${z}`);
    const inner = z ** -2 - (2 * bitNoiseStd) ** -2;
    const zDelta = inner ** -0.5;
    if (!(inner > 0 && Number.isFinite(zDelta))) {
      throw new RangeError(
        `adaptive clipping cannot reach noise multiplier ${z}: the bit noise std ${bitNoiseStd} ` +
          `(m=${expectedClients}) must exceed z/2 = ${z / 2}; use more clients per round or a larger bitNoiseStd`,
      );
    }
    return zDelta;
  }

  /** {@link AdaptiveClip.updateNoiseMultiplier} with this instance's m and σ_b. */
  noiseMultiplierForUpdates(z: number): number {
    return AdaptiveClip.updateNoiseMultiplier(z, this.expectedClients, this.bitNoiseStd);
  }
}
