/**
 * Homomorphic-encryption building blocks (CKKS via node-seal 7) and their plaintext reference.
 * See README.md in this folder for parameters, layout, wire format and measurements.
 */
export { CRYPTO_ERROR_CODES, CryptoError, isCryptoError, type CryptoErrorCode } from './errors.js';
export { loadSeal, type LoadSealOptions, type SealModule, type SealRuntime } from './seal-runtime.js';
export { SealScope, deleteAll, sealCall, sealExceptionMessage, withSeal, type Deletable } from './seal-scope.js';
export { DEFAULT_CKKS_PARAMETERS, createCkksContext, type CkksContext, type CkksParameters } from './ckks-params.js';
export { createCiphertextCodec, type CiphertextCodec } from './ckks-wire.js';
export {
  generateKeys,
  loadPublicKey,
  loadSecretKey,
  serializePublicKey,
  serializeSecretKey,
  type KeyHolderKeys,
} from './keys.js';
export { chunkLength, ciphertextCount, packUpdate, unpackAggregate, updateLength } from './packing.js';
export {
  CiphertextAccumulator,
  CkksAggregation,
  ciphertextCodec,
  decryptAggregate,
  encryptUpdate,
  sumCiphertexts,
  type CkksRoleKeys,
} from './ckks.js';
export { PlainAggregation, type PlainAggregationOptions } from './plain.js';
export type { AggregationScheme, UpdateAccumulator, WeightedSum } from './scheme.js';
