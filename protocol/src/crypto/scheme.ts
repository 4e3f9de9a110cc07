/**
 * The small interface every additive aggregation scheme implements: the CKKS scheme
 * (`CkksAggregation`) and the plaintext reference (`PlainAggregation`). One conformance suite
 * (`conformance.test.ts`) runs against each implementation.
 *
 * Roles: a client calls `encryptUpdate`, the server only ever sees bytes and uses an
 * `UpdateAccumulator`, the key holder calls `decryptAggregate` once per round.
 */

/** What decryption yields: Σ weightᵢ·updateᵢ and Σ weightᵢ. Divide to get the weighted mean. */
export interface WeightedSum {
  /** Σᵢ weightᵢ · updateᵢ, element-wise, in float64. */
  readonly values: Float64Array;
  /** Σᵢ weightᵢ, exact (rounded to the integer it must be). */
  readonly weight: number;
}

/** Server-side running sum of submissions; holds no key. */
export interface UpdateAccumulator {
  /** Parameters per update (the model size), fixed for the round. */
  readonly length: number;
  /** Number of submissions added so far. */
  readonly count: number;
  /**
   * Validates one client's ciphertexts and adds them to the sum, all or nothing: a submission
   * that is malformed or made under other parameters throws `CryptoError('ERR_CIPHERTEXT')`
   * and leaves the sum unchanged.
   */
  add(ciphertexts: readonly Uint8Array[]): void;
  /** The serialized sum, to send to the key holder. Throws `ERR_EMPTY_AGGREGATE` before any `add`. */
  result(): Uint8Array[];
  /** Frees native memory. The accumulator is unusable afterwards. */
  dispose(): void;
}

/** An additive scheme: encrypt weighted updates, add ciphertexts, decrypt the sum. */
export interface AggregationScheme {
  /** `'ckks'` or `'plain'`. */
  readonly name: string;
  /** Values per ciphertext; the packing layout is `packing.ts`'s for every scheme. */
  readonly slotCount: number;
  /** Largest |Σ weight·update| (and Σ weight) the scheme carries exactly. */
  readonly maxMagnitude: number;
  /**
   * Client: multiplies `update` by `weight` (in float64), packs it with `weight` in the slot
   * after the data, and encrypts. Returns one serialized ciphertext per packed chunk.
   */
  encryptUpdate(update: Float32Array | readonly Float32Array[], weight: number): Uint8Array[];
  /** Server: a running sum for updates of `length` parameters. */
  createAccumulator(length: number): UpdateAccumulator;
  /** Key holder: decrypts a summed aggregate of updates of `length` parameters. */
  decryptAggregate(ciphertexts: readonly Uint8Array[], length: number): WeightedSum;
  /** Frees native memory held by the scheme. */
  dispose(): void;
}
