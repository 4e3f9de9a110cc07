import { decodeJwt } from 'jose';
import { ErrorCode, TesseraError } from './errors.js';

/** The `sub` claim of a JWT, read without verifying (the server verifies; a client only needs its id). */
export function subjectOf(token: string): string {
  let sub: unknown;
  try {
    sub = decodeJwt(token.trim()).sub;
  } catch {
    throw new TesseraError(ErrorCode.UNAUTHORIZED, 'the token is not a JWT');
  }
  if (typeof sub !== 'string' || !sub) throw new TesseraError(ErrorCode.UNAUTHORIZED, 'the token has no readable subject');
  return sub;
}
