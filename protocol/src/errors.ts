/**
 * Stable error codes. The same codes travel in socket.io acks, `error` events and REST error
 * bodies; never rename one (add a new code instead).
 */
export const ErrorCode = {
  PROTOCOL_VERSION: 'ERR_PROTOCOL_VERSION',
  INVALID_MESSAGE: 'ERR_INVALID_MESSAGE',
  UNAUTHORIZED: 'ERR_UNAUTHORIZED',
  FORBIDDEN: 'ERR_FORBIDDEN',
  TOKEN_EXPIRED: 'ERR_TOKEN_EXPIRED',
  UNKNOWN_TASK: 'ERR_UNKNOWN_TASK',
  UNKNOWN_ROUND: 'ERR_UNKNOWN_ROUND',
  STALE_ROUND: 'ERR_STALE_ROUND',
  FUTURE_ROUND: 'ERR_FUTURE_ROUND',
  STALE_MODEL: 'ERR_STALE_MODEL',
  NOT_IN_COHORT: 'ERR_NOT_IN_COHORT',
  DUPLICATE_SUBMISSION: 'ERR_DUPLICATE_SUBMISSION',
  TENSOR_MISMATCH: 'ERR_TENSOR_MISMATCH',
  NON_FINITE: 'ERR_NON_FINITE',
  NORM_BOUND: 'ERR_NORM_BOUND',
  PAYLOAD_TOO_LARGE: 'ERR_PAYLOAD_TOO_LARGE',
  ROUND_CLOSED: 'ERR_ROUND_CLOSED',
  PRIVACY_BUDGET: 'ERR_PRIVACY_BUDGET',
  CIPHERTEXT: 'ERR_CIPHERTEXT',
  CKKS_PARAMETERS: 'ERR_CKKS_PARAMETERS',
  INVALID_UPDATE: 'ERR_INVALID_UPDATE',
  KEY: 'ERR_KEY',
  EMPTY_AGGREGATE: 'ERR_EMPTY_AGGREGATE',
  RECEIPT: 'ERR_RECEIPT',
  KEYHOLDER_UNAVAILABLE: 'ERR_KEYHOLDER_UNAVAILABLE',
  REPLAY: 'ERR_REPLAY',
  RATE_LIMITED: 'ERR_RATE_LIMITED',
  INVALID_CONFIG: 'ERR_INVALID_CONFIG',
  NOT_FOUND: 'ERR_NOT_FOUND',
  INTERNAL: 'ERR_INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export const ERROR_CODES: readonly ErrorCode[] = Object.values(ErrorCode);

/** An error that carries a stable `code`, like jose's `JOSEError.code`. */
export class TesseraError extends Error {
  readonly code: ErrorCode;
  readonly details?: unknown;
  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = 'TesseraError';
    this.code = code;
    this.details = details;
  }
}

/** True when `value` is a TesseraError (also across realms / after structured cloning of `code`). */
export function isTesseraError(value: unknown): value is TesseraError {
  return value instanceof TesseraError;
}

/** The body of a rejection in acks and REST responses. */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
}

/** Converts any thrown value into an ErrorBody, hiding internals of unexpected errors. */
export function toErrorBody(err: unknown): ErrorBody {
  if (err instanceof TesseraError) return { code: err.code, message: err.message };
  // Crypto errors carry codes from the same list (see crypto/errors.ts).
  const code = (err as { code?: unknown } | null)?.code;
  if (err instanceof Error && typeof code === 'string' && (ERROR_CODES as readonly string[]).includes(code)) return { code: code as ErrorCode, message: err.message };
  return { code: ErrorCode.INTERNAL, message: 'internal error' };
}
