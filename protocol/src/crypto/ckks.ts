/**
 * CKKS aggregation of weighted model updates: client encryption, server-side homomorphic sum,
 * key-holder decryption. Parameters: ckks-params.ts; slot layout: packing.ts; wire format:
 * ckks-wire.ts.
 */
import type { Ciphertext, Decryptor, Encryptor, Plaintext, PublicKey, SecretKey } from 'node-seal';
import { createCiphertextCodec, type CiphertextCodec } from './ckks-wire.js';
import type { CkksContext } from './ckks-params.js';
import { CryptoError } from './errors.js';
import { toBytes } from './keys.js';
import { ciphertextCount, packUpdate, unpackAggregate } from './packing.js';
import type { AggregationScheme, UpdateAccumulator, WeightedSum } from './scheme.js';
import { deleteAll, sealCall, withSeal, type SealScope } from './seal-scope.js';

const codecs = new WeakMap<CkksContext, CiphertextCodec>();

/** The (cached) wire codec of a context. */
export function ciphertextCodec(ctx: CkksContext): CiphertextCodec {
  let codec = codecs.get(ctx);
  if (!codec) {
    codec = createCiphertextCodec(ctx);
    codecs.set(ctx, codec);
  }
  return codec;
}

/**
 * Client side: multiplies `update` by `weight` (float64, exact for float32 values and integer
 * weights below 2^29), packs it with `weight` in the slot after the data (packing.ts),
 * encodes at scale Δ, encrypts under `publicKey` and serializes each ciphertext in Tessera's
 * packed wire format. Pass the update as clipped/noised by the privacy pipeline, unweighted.
 * @example
 * const cts = encryptUpdate(ctx, publicKey, delta, exampleCount); // Uint8Array[] to upload
 */
export function encryptUpdate(
  ctx: CkksContext,
  publicKey: PublicKey,
  update: Float32Array | readonly Float32Array[],
  weight: number,
): Uint8Array[] {
  const chunks = packUpdate(update, ctx.slotCount, weight, ctx.maxMagnitude);
  return withSeal((s) => {
    const encryptor = s.track(
      sealCall('ERR_KEY', 'public key does not belong to this context', () => new ctx.seal.Encryptor(ctx.context, publicKey)),
    );
    return encryptChunks(ctx, encryptor, chunks, s);
  });
}

function encryptChunks(ctx: CkksContext, encryptor: Encryptor, chunks: readonly Float64Array[], s: SealScope): Uint8Array[] {
  const codec = ciphertextCodec(ctx);
  const plain = s.track(new ctx.seal.Plaintext());
  const cipher = s.track(new ctx.seal.Ciphertext());
  const none = ctx.seal.ComprModeType.none;
  const out: Uint8Array[] = [];
  for (const chunk of chunks) {
    ctx.encoder.encode(chunk, ctx.scale, plain);
    encryptor.encrypt(plain, cipher);
    out.push(codec.pack(toBytes(cipher.saveToArray(none))));
  }
  return out;
}

function checkCiphertextList(value: unknown, expected: number): asserts value is readonly Uint8Array[] {
  if (!Array.isArray(value)) throw new CryptoError('ERR_CIPHERTEXT', 'ciphertexts must be an array of byte arrays');
  if (value.length !== expected) {
    throw new CryptoError('ERR_CIPHERTEXT', `expected ${expected} ciphertexts, got ${value.length}`);
  }
}

/** Loads bytes that `codec.unpack` already validated; SEAL is not expected to throw here. */
function loadInto(ctx: CkksContext, target: Ciphertext, sealBytes: Uint8Array): void {
  sealCall('ERR_CIPHERTEXT', 'ciphertext does not load under the task parameters', () =>
    target.loadFromArray(ctx.context, sealBytes),
  );
}

/**
 * Server side: a running homomorphic sum of clients' encrypted updates (holds no key).
 * Each `add` validates every ciphertext of the submission before any is added, then adds
 * in place; the sum stays a fresh-level, size-2 ciphertext list.
 * @example
 * const acc = new CiphertextAccumulator(ctx, modelSize);
 * try { for (const s of submissions) acc.add(s); send(acc.result()); } finally { acc.dispose(); }
 */
export class CiphertextAccumulator implements UpdateAccumulator {
  readonly length: number;
  readonly #ctx: CkksContext;
  readonly #expected: number;
  #sums: Ciphertext[] = [];
  #count = 0;
  #broken = false;
  #disposed = false;

  constructor(ctx: CkksContext, length: number) {
    this.#ctx = ctx;
    this.length = length;
    this.#expected = ciphertextCount(length, ctx.slotCount);
  }

  get count(): number {
    return this.#count;
  }

  add(ciphertexts: readonly Uint8Array[]): void {
    this.#checkUsable();
    checkCiphertextList(ciphertexts, this.#expected);
    const codec = ciphertextCodec(this.#ctx);
    const sealBytes = ciphertexts.map((c) => codec.unpack(c)); // all validated before any is used
    const loaded: Ciphertext[] = [];
    try {
      for (const bytes of sealBytes) {
        const ct = new this.#ctx.seal.Ciphertext();
        loaded.push(ct);
        loadInto(this.#ctx, ct, bytes);
      }
    } catch (error) {
      deleteAll(...loaded);
      throw error;
    }
    if (this.#count === 0) {
      this.#sums = loaded;
    } else {
      try {
        for (let i = 0; i < loaded.length; i++) {
          // Only fails if the sum became transparent, which takes a client that knows the
          // other ciphertexts; the sum is then unusable, so the round must fail.
          sealCall('ERR_CIPHERTEXT', 'homomorphic addition failed', () =>
            this.#ctx.evaluator.addInplace(this.#sums[i]!, loaded[i]!),
          );
        }
      } catch (error) {
        this.#broken = true;
        throw error;
      } finally {
        deleteAll(...loaded);
      }
    }
    this.#count++;
  }

  result(): Uint8Array[] {
    this.#checkUsable();
    if (this.#count === 0) throw new CryptoError('ERR_EMPTY_AGGREGATE', 'no submission was added to the aggregate');
    const codec = ciphertextCodec(this.#ctx);
    const none = this.#ctx.seal.ComprModeType.none;
    return this.#sums.map((ct) => codec.pack(toBytes(ct.saveToArray(none))));
  }

  dispose(): void {
    this.#disposed = true;
    deleteAll(...this.#sums);
    this.#sums = [];
  }

  #checkUsable(): void {
    if (this.#disposed) throw new Error('CiphertextAccumulator used after dispose()');
    if (this.#broken) throw new CryptoError('ERR_CIPHERTEXT', 'aggregate is corrupt: an addition failed earlier');
  }
}

/**
 * Server side, all at once: the homomorphic sum of `submissions` (each one client's
 * ciphertexts for an update of `length` values). Any bad submission throws `ERR_CIPHERTEXT`.
 */
export function sumCiphertexts(
  ctx: CkksContext,
  submissions: readonly (readonly Uint8Array[])[],
  length: number,
): Uint8Array[] {
  const acc = new CiphertextAccumulator(ctx, length);
  try {
    for (const s of submissions) acc.add(s);
    return acc.result();
  } finally {
    acc.dispose();
  }
}

/**
 * Key holder: validates, decrypts and decodes an aggregate of updates of `length` values.
 * Returns Σ wᵢ·uᵢ and Σ wᵢ (divide for the weighted mean).
 */
export function decryptAggregate(
  ctx: CkksContext,
  secretKey: SecretKey,
  ciphertexts: readonly Uint8Array[],
  length: number,
): WeightedSum {
  const expected = ciphertextCount(length, ctx.slotCount);
  checkCiphertextList(ciphertexts, expected);
  const codec = ciphertextCodec(ctx);
  const sealBytes = ciphertexts.map((c) => codec.unpack(c));
  const chunks = withSeal((s) => {
    const decryptor = s.track(
      sealCall('ERR_KEY', 'secret key does not belong to this context', () => new ctx.seal.Decryptor(ctx.context, secretKey)),
    );
    return decryptChunks(ctx, (ct, pt) => decryptor.decrypt(ct, pt), sealBytes, s);
  });
  return unpackAggregate(chunks, length, ctx.slotCount);
}

function decryptChunks(
  ctx: CkksContext,
  decrypt: (ct: Ciphertext, pt: Plaintext) => void,
  sealBytes: readonly Uint8Array[],
  s: SealScope,
): Float64Array[] {
  const cipher = s.track(new ctx.seal.Ciphertext());
  const plain = s.track(new ctx.seal.Plaintext());
  return sealBytes.map((bytes) => {
    loadInto(ctx, cipher, bytes);
    decrypt(cipher, plain);
    const decoded: unknown = ctx.encoder.decodeFloat64(plain);
    if (!(decoded instanceof Float64Array)) throw new Error('node-seal decodeFloat64 did not return a Float64Array');
    return decoded;
  });
}

/** The keys a role holds: clients a public key, the key holder a secret key, the server none. */
export interface CkksRoleKeys {
  readonly publicKey?: PublicKey;
  readonly secretKey?: SecretKey;
}

/**
 * `AggregationScheme` over CKKS. Borrows `ctx` and the keys (dispose those yourself); keeps an
 * `Encryptor`/`Decryptor` for repeated use, freed by `dispose()`.
 */
export class CkksAggregation implements AggregationScheme {
  readonly name = 'ckks';
  readonly slotCount: number;
  readonly maxMagnitude: number;
  readonly #ctx: CkksContext;
  readonly #keys: CkksRoleKeys;
  #encryptor: Encryptor | undefined;
  #decryptor: Decryptor | undefined;

  constructor(ctx: CkksContext, keys: CkksRoleKeys = {}) {
    this.#ctx = ctx;
    this.#keys = keys;
    this.slotCount = ctx.slotCount;
    this.maxMagnitude = ctx.maxMagnitude;
  }

  encryptUpdate(update: Float32Array | readonly Float32Array[], weight: number): Uint8Array[] {
    const ctx = this.#ctx;
    const publicKey = this.#keys.publicKey;
    if (!publicKey) throw new CryptoError('ERR_KEY', 'this role has no public key to encrypt with');
    const chunks = packUpdate(update, ctx.slotCount, weight, ctx.maxMagnitude);
    this.#encryptor ??= sealCall('ERR_KEY', 'public key does not belong to this context', () => new ctx.seal.Encryptor(ctx.context, publicKey));
    const encryptor = this.#encryptor;
    return withSeal((s) => encryptChunks(ctx, encryptor, chunks, s));
  }

  createAccumulator(length: number): UpdateAccumulator {
    return new CiphertextAccumulator(this.#ctx, length);
  }

  decryptAggregate(ciphertexts: readonly Uint8Array[], length: number): WeightedSum {
    const ctx = this.#ctx;
    const secretKey = this.#keys.secretKey;
    if (!secretKey) throw new CryptoError('ERR_KEY', 'this role has no secret key to decrypt with');
    checkCiphertextList(ciphertexts, ciphertextCount(length, ctx.slotCount));
    const codec = ciphertextCodec(ctx);
    const sealBytes = ciphertexts.map((c) => codec.unpack(c));
    this.#decryptor ??= sealCall('ERR_KEY', 'secret key does not belong to this context', () => new ctx.seal.Decryptor(ctx.context, secretKey));
    const decryptor = this.#decryptor;
    const chunks = withSeal((s) => decryptChunks(ctx, (ct, pt) => decryptor.decrypt(ct, pt), sealBytes, s));
    return unpackAggregate(chunks, length, ctx.slotCount);
  }

  dispose(): void {
    deleteAll(this.#encryptor, this.#decryptor);
    this.#encryptor = undefined;
    this.#decryptor = undefined;
  }
}
