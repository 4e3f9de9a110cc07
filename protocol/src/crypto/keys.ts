/**
 * The key holder's CKKS keys. Only the public key ever leaves the key holder; no relin or
 * Galois keys exist because the workload only adds ciphertexts.
 */
import type { PublicKey, SecretKey } from 'node-seal';
import type { CkksContext } from './ckks-params.js';
import { CryptoError } from './errors.js';
import { deleteAll, sealCall, withSeal } from './seal-scope.js';

/** A fresh key pair. `dispose()` deletes both keys. */
export interface KeyHolderKeys {
  readonly secretKey: SecretKey;
  readonly publicKey: PublicKey;
  /**
   * The public key as SEAL's seeded serialization (half the size: the random polynomial is
   * replaced by its seed). `publicKey` is exactly this key, loaded back.
   */
  readonly publicKeyBytes: Uint8Array;
  dispose(): void;
}

/** Generates a secret key and its public key (SEAL draws randomness from the platform CSPRNG). */
export function generateKeys(ctx: CkksContext): KeyHolderKeys {
  const { seal } = ctx;
  const keygen = new seal.KeyGenerator(ctx.context);
  const secretKey = keygen.secretKey();
  try {
    const publicKeyBytes = withSeal((s) =>
      toBytes(s.track(keygen.createPublicKeySerializable()).saveToArray(seal.ComprModeType.zstd)),
    );
    const publicKey = loadPublicKey(ctx, publicKeyBytes);
    return {
      secretKey,
      publicKey,
      publicKeyBytes,
      dispose() {
        deleteAll(secretKey, publicKey);
      },
    };
  } catch (error) {
    secretKey.delete();
    throw error;
  } finally {
    keygen.delete();
  }
}

/** Serializes a public key (full size, zstd-framed) — see `KeyHolderKeys.publicKeyBytes` for the compact form. */
export function serializePublicKey(ctx: CkksContext, publicKey: PublicKey): Uint8Array {
  return toBytes(publicKey.saveToArray(ctx.seal.ComprModeType.zstd));
}

/** Serializes a secret key (zstd-framed). Keep these bytes on the key holder only. */
export function serializeSecretKey(ctx: CkksContext, secretKey: SecretKey): Uint8Array {
  return toBytes(secretKey.saveToArray(ctx.seal.ComprModeType.zstd));
}

/** Loads a public key (either serialization) under `ctx`; throws `ERR_KEY` if it does not fit. */
export function loadPublicKey(ctx: CkksContext, bytes: Uint8Array): PublicKey {
  const key = new ctx.seal.PublicKey();
  try {
    checkSealFrame(bytes, 'public key');
    sealCall('ERR_KEY', 'public key does not load under these CKKS parameters', () =>
      key.loadFromArray(ctx.context, plainBytes(bytes)),
    );
    return key;
  } catch (error) {
    key.delete();
    throw error;
  }
}

/** Loads a secret key under `ctx`; throws `ERR_KEY` if it does not fit. */
export function loadSecretKey(ctx: CkksContext, bytes: Uint8Array): SecretKey {
  const key = new ctx.seal.SecretKey();
  try {
    checkSealFrame(bytes, 'secret key');
    sealCall('ERR_KEY', 'secret key does not load under these CKKS parameters', () =>
      key.loadFromArray(ctx.context, plainBytes(bytes)),
    );
    return key;
  } catch (error) {
    key.delete();
    throw error;
  }
}

/** Cheap checks before SEAL sees key bytes (each SEAL exception costs WASM stack, see `sealCall`). */
function checkSealFrame(bytes: Uint8Array, what: string): void {
  if (!(bytes instanceof Uint8Array) || bytes.length < 16) throw new CryptoError('ERR_KEY', `${what}: too short`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint16(0, true) !== 0xa15e || v.getUint8(2) !== 16) throw new CryptoError('ERR_KEY', `${what}: not a SEAL object`);
  if (v.getBigUint64(8, true) !== BigInt(bytes.length)) throw new CryptoError('ERR_KEY', `${what}: truncated or padded`);
}

/** embind wants a plain Uint8Array; a Node Buffer (socket.io, fs) is copied into one. */
function plainBytes(bytes: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(bytes) === Uint8Array.prototype ? bytes : new Uint8Array(bytes);
}

/** node-seal's `saveToArray` returns a fresh Uint8Array (typed `any`). */
export function toBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  throw new Error('node-seal saveToArray did not return a Uint8Array');
}
