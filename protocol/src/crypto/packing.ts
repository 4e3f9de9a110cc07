/**
 * How an update is laid out in ciphertext slots (the same for CKKS and the plaintext
 * reference, so both produce the same number of ciphertexts).
 *
 * For an update u of length L, weight w and slotCount S, the flat slot sequence is
 *
 *   slot k = w·u[k]   for 0 ≤ k < L      (data, in order; several tensors are concatenated)
 *   slot L = w                           (the weight, right after the data)
 *
 * cut into chunks of S: chunk c holds flat slots [c·S, (c+1)·S). So the weight is the last
 * used slot of the last ciphertext, and there are ⌊L/S⌋ + 1 ciphertexts: when L is a multiple
 * of S (including L = 0) the weight gets a ciphertext of its own. Unused slots are zero.
 * Summing slot-wise then yields Σ wᵢ·uᵢ in the data slots and Σ wᵢ in the weight slot.
 */
import { CryptoError } from './errors.js';
import type { WeightedSum } from './scheme.js';

/** Number of ciphertexts for an update of `length` values plus the weight slot. */
export function ciphertextCount(length: number, slotCount: number): number {
  checkLength(length);
  checkSlotCount(slotCount);
  return Math.floor(length / slotCount) + 1;
}

/** Number of used slots in chunk `index` (the others are zero). */
export function chunkLength(length: number, slotCount: number, index: number): number {
  return Math.min(slotCount, length + 1 - index * slotCount);
}

/** Total length of one tensor or of a list of tensors. */
export function updateLength(update: Float32Array | readonly Float32Array[]): number {
  if (update instanceof Float32Array) return update.length;
  let n = 0;
  for (const t of update) n += t.length;
  return n;
}

/**
 * Packs `weight·update` followed by `weight` into chunks of at most `slotCount` float64
 * values (the layout above). Checks every value is finite and that |weight·value| and the
 * weight are ≤ `maxMagnitude`; the weight must be a non-negative integer (an example count).
 * @example
 * packUpdate(new Float32Array([0.5, -1]), 4, 3) // → [Float64Array [1.5, -3, 3]]
 */
export function packUpdate(
  update: Float32Array | readonly Float32Array[],
  slotCount: number,
  weight: number,
  maxMagnitude = Number.MAX_VALUE,
): Float64Array[] {
  checkSlotCount(slotCount);
  if (!Number.isSafeInteger(weight) || weight < 0 || weight > maxMagnitude) {
    throw new CryptoError(
      'ERR_INVALID_UPDATE',
      `weight must be an integer in [0, ${Math.floor(maxMagnitude)}], got ${weight}`,
    );
  }
  const tensors = update instanceof Float32Array ? [update] : update;
  const length = updateLength(update);
  const count = ciphertextCount(length, slotCount);
  const chunks: Float64Array[] = [];
  for (let c = 0; c < count; c++) chunks.push(new Float64Array(chunkLength(length, slotCount, c)));
  let k = 0;
  for (const t of tensors) {
    for (let i = 0; i < t.length; i++, k++) {
      const v = weight * t[i]!;
      if (!Number.isFinite(v) || Math.abs(v) > maxMagnitude) {
        throw new CryptoError(
          'ERR_INVALID_UPDATE',
          `update value ${k} (${t[i]}) × weight ${weight} is not finite or exceeds ±${maxMagnitude}`,
        );
      }
      chunks[Math.floor(k / slotCount)]![k % slotCount] = v;
    }
  }
  chunks[Math.floor(length / slotCount)]![length % slotCount] = weight;
  return chunks;
}

/**
 * Reads a decrypted (or summed plaintext) aggregate back: the first `length` flat slots and
 * the weight slot. The weight is rounded to the integer a sum of integers must be; a weight
 * that is off by more than 1/4, negative or non-finite means the aggregate is corrupt or its
 * range overflowed, and throws `ERR_CIPHERTEXT`.
 */
export function unpackAggregate(chunks: readonly ArrayLike<number>[], length: number, slotCount: number): WeightedSum {
  const count = ciphertextCount(length, slotCount);
  if (chunks.length !== count) {
    throw new CryptoError('ERR_CIPHERTEXT', `expected ${count} chunks for ${length} values, got ${chunks.length}`);
  }
  const values = new Float64Array(length);
  for (let c = 0, k = 0; c < count && k < length; c++) {
    const chunk = chunks[c]!;
    const n = Math.min(slotCount, length - k);
    if (chunk.length < n) throw new CryptoError('ERR_CIPHERTEXT', `chunk ${c} has ${chunk.length} slots, needs ${n}`);
    for (let i = 0; i < n; i++, k++) values[k] = chunk[i]!;
  }
  const last = chunks[count - 1]!;
  const raw = last[length % slotCount];
  if (raw === undefined || !Number.isFinite(raw)) {
    throw new CryptoError('ERR_CIPHERTEXT', 'aggregate has no weight slot');
  }
  const weight = Math.round(raw);
  if (Math.abs(raw - weight) > 0.25 || weight < 0) {
    throw new CryptoError(
      'ERR_CIPHERTEXT',
      `aggregate weight slot ${raw} is not a non-negative integer: corrupt aggregate or range overflow`,
    );
  }
  return { values, weight };
}

function checkLength(length: number): void {
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new CryptoError('ERR_INVALID_UPDATE', `update length must be a non-negative integer, got ${length}`);
  }
}

function checkSlotCount(slotCount: number): void {
  if (!Number.isSafeInteger(slotCount) || slotCount < 1) {
    throw new CryptoError('ERR_INVALID_UPDATE', `slotCount must be a positive integer, got ${slotCount}`);
  }
}
