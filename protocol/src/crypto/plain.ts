/**
 * Plaintext reference implementation of `AggregationScheme`: the same packing layout and
 * ciphertext count as CKKS, but each "ciphertext" is the chunk's float64 values in the clear.
 * It defines what the CKKS implementation must compute, and is the aggregation path for
 * tasks that run without HE. It hides nothing.
 *
 * "Ciphertext" layout (little-endian):
 *   0  4  magic "TSPL"
 *   4  1  format version (1)
 *   5  3  reserved = 0
 *   8  4  slotCount
 *   12 4  n = values in this chunk (≤ slotCount)
 *   16 8n float64 values
 */
import { CryptoError } from './errors.js';
import { chunkLength, ciphertextCount, packUpdate, unpackAggregate } from './packing.js';
import type { AggregationScheme, UpdateAccumulator, WeightedSum } from './scheme.js';

const MAGIC = [0x54, 0x53, 0x50, 0x4c]; // "TSPL"
const FORMAT_VERSION = 1;
const HEADER = 16;

export interface PlainAggregationOptions {
  /** Values per chunk; defaults to 4096, CKKS's slot count at N = 8192. */
  readonly slotCount?: number;
  /** Largest |value| accepted; defaults to CKKS's default range so both reject the same inputs. */
  readonly maxMagnitude?: number;
}

function reject(why: string): never {
  throw new CryptoError('ERR_CIPHERTEXT', `invalid plaintext chunk: ${why}`);
}

/** Plaintext reference: "encrypt" = copy float64 bytes, add = float64 sum, "decrypt" = read. */
export class PlainAggregation implements AggregationScheme {
  readonly name = 'plain';
  readonly slotCount: number;
  readonly maxMagnitude: number;

  constructor(options: PlainAggregationOptions = {}) {
    this.slotCount = options.slotCount ?? 4096;
    this.maxMagnitude = options.maxMagnitude ?? 2 ** 18;
    if (!Number.isSafeInteger(this.slotCount) || this.slotCount < 1 || this.slotCount > 0xffffffff) {
      throw new CryptoError('ERR_CKKS_PARAMETERS', `slotCount must be a positive 32-bit integer, got ${this.slotCount}`);
    }
  }

  encryptUpdate(update: Float32Array | readonly Float32Array[], weight: number): Uint8Array[] {
    return packUpdate(update, this.slotCount, weight, this.maxMagnitude).map((chunk) => this.#serialize(chunk));
  }

  createAccumulator(length: number): UpdateAccumulator {
    return new PlainAccumulator(this, length);
  }

  decryptAggregate(ciphertexts: readonly Uint8Array[], length: number): WeightedSum {
    return unpackAggregate(this.parseAll(ciphertexts, length), length, this.slotCount);
  }

  dispose(): void {}

  /** Validates a submission of `length` values and returns its chunks (internal to the reference). */
  parseAll(ciphertexts: readonly Uint8Array[], length: number): Float64Array[] {
    const expected = ciphertextCount(length, this.slotCount);
    if (!Array.isArray(ciphertexts)) reject('ciphertexts must be an array of byte arrays');
    if (ciphertexts.length !== expected) reject(`expected ${expected} chunks, got ${ciphertexts.length}`);
    return ciphertexts.map((bytes, i) => this.#parse(bytes, chunkLength(length, this.slotCount, i)));
  }

  /** Serializes float64 values as one chunk (internal to the reference, used by its accumulator). */
  serializeChunk(values: Float64Array): Uint8Array {
    return this.#serialize(values);
  }

  #serialize(values: Float64Array): Uint8Array {
    const out = new Uint8Array(HEADER + 8 * values.length);
    const v = new DataView(out.buffer);
    MAGIC.forEach((b, i) => v.setUint8(i, b));
    v.setUint8(4, FORMAT_VERSION);
    v.setUint32(8, this.slotCount, true);
    v.setUint32(12, values.length, true);
    for (let i = 0; i < values.length; i++) v.setFloat64(HEADER + 8 * i, values[i]!, true);
    return out;
  }

  #parse(bytes: Uint8Array, n: number): Float64Array {
    if (!(bytes instanceof Uint8Array)) reject('not a byte array');
    if (bytes.length !== HEADER + 8 * n) reject(`expected ${HEADER + 8 * n} bytes, got ${bytes.length} (truncated, or other parameters)`);
    for (let i = 0; i < 4; i++) if (bytes[i] !== MAGIC[i]) reject('bad magic');
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (v.getUint8(4) !== FORMAT_VERSION) reject(`unsupported format version ${v.getUint8(4)}`);
    if (v.getUint8(5) !== 0 || v.getUint16(6, true) !== 0) reject('reserved bytes are not zero');
    if (v.getUint32(8, true) !== this.slotCount) reject(`slot count ${v.getUint32(8, true)}, expected ${this.slotCount}`);
    if (v.getUint32(12, true) !== n) reject(`${v.getUint32(12, true)} values, expected ${n}`);
    const values = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const x = v.getFloat64(HEADER + 8 * i, true);
      if (!Number.isFinite(x)) reject(`value ${i} is not finite`);
      values[i] = x;
    }
    return values;
  }
}

class PlainAccumulator implements UpdateAccumulator {
  readonly length: number;
  readonly #scheme: PlainAggregation;
  #sums: Float64Array[] | undefined;
  #count = 0;

  constructor(scheme: PlainAggregation, length: number) {
    this.#scheme = scheme;
    this.length = length;
    ciphertextCount(length, scheme.slotCount); // validates length
  }

  get count(): number {
    return this.#count;
  }

  add(ciphertexts: readonly Uint8Array[]): void {
    const chunks = this.#scheme.parseAll(ciphertexts, this.length); // all validated first
    if (!this.#sums) {
      this.#sums = chunks;
    } else {
      this.#sums.forEach((sum, c) => {
        const chunk = chunks[c]!;
        for (let i = 0; i < sum.length; i++) sum[i]! += chunk[i]!;
      });
    }
    this.#count++;
  }

  result(): Uint8Array[] {
    if (!this.#sums) throw new CryptoError('ERR_EMPTY_AGGREGATE', 'no submission was added to the aggregate');
    return this.#sums.map((s) => this.#scheme.serializeChunk(s));
  }

  dispose(): void {
    this.#sums = undefined;
  }
}
