/**
 * Stable error codes of the crypto building blocks. They travel in socket.io acks and REST
 * bodies like every other Tessera error code, so never rename one.
 */
export const CRYPTO_ERROR_CODES = [
  /** A ciphertext (or plaintext-reference "ciphertext") that does not parse, is truncated, or
   *  was made under other parameters (wrong N, moduli, scale, parms id, size, chunk count). */
  'ERR_CIPHERTEXT',
  /** Encryption parameters that SEAL rejects at 128-bit security, or that the code cannot use. */
  'ERR_CKKS_PARAMETERS',
  /** An update or weight that cannot be encrypted: non-finite, out of the exact range, or a
   *  weight that is not a non-negative integer. */
  'ERR_INVALID_UPDATE',
  /** A key that does not load under the context, or an operation whose key this role lacks. */
  'ERR_KEY',
  /** `result()` of an accumulator to which no submission was added. */
  'ERR_EMPTY_AGGREGATE',
] as const;

export type CryptoErrorCode = (typeof CRYPTO_ERROR_CODES)[number];

/** Error thrown by `protocol/crypto`; `code` is stable, `message` is for humans. */
export class CryptoError extends Error {
  readonly code: CryptoErrorCode;

  constructor(code: CryptoErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CryptoError';
    this.code = code;
  }
}

/** True for a `CryptoError` with the given code (or any code when `code` is omitted). */
export function isCryptoError(error: unknown, code?: CryptoErrorCode): error is CryptoError {
  return error instanceof CryptoError && (code === undefined || error.code === code);
}
