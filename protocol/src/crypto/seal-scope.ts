import { CryptoError, type CryptoErrorCode } from './errors.js';

/** Any node-seal (embind) object: its C++ memory is freed only by `delete()`, never by GC. */
export interface Deletable {
  delete(): void;
  isDeleted(): boolean;
}

/**
 * Owns SEAL objects created inside one operation and deletes them all, in reverse order, on
 * `dispose()` — including when the operation throws. Every handle a node-seal call returns is
 * a new C++ object (even `ctx.firstParmsId()` or `parms.coeffModulus()`), so track each one.
 */
export class SealScope {
  #objects: Deletable[] = [];

  /** Registers `object` for deletion when the scope ends; returns it. */
  track<T extends Deletable>(object: T): T {
    this.#objects.push(object);
    return object;
  }

  /** Hands `object` to the caller: the scope will no longer delete it. */
  release<T extends Deletable>(object: T): T {
    const i = this.#objects.lastIndexOf(object);
    if (i >= 0) this.#objects.splice(i, 1);
    return object;
  }

  /** Deletes every tracked object that is still alive. Safe to call twice. */
  dispose(): void {
    const objects = this.#objects;
    this.#objects = [];
    for (let i = objects.length - 1; i >= 0; i--) {
      const o = objects[i]!;
      if (!o.isDeleted()) o.delete();
    }
  }
}

/**
 * Runs `fn` with a fresh {@link SealScope} and deletes everything it tracked afterwards.
 * @example
 * const ok = withSeal((s) => s.track(ctx.context.firstParmsId()).values());
 */
export function withSeal<T>(fn: (scope: SealScope) => T): T {
  const scope = new SealScope();
  try {
    return fn(scope);
  } finally {
    scope.dispose();
  }
}

/** Deletes each object that exists and is not yet deleted. */
export function deleteAll(...objects: readonly (Deletable | undefined | null)[]): void {
  for (const o of objects) if (o && !o.isDeleted()) o.delete();
}

/**
 * Text of an exception thrown by SEAL's WASM. Emscripten throws a `WebAssembly.Exception` whose
 * `message` is `[cppType, what()]`; anything else is stringified.
 */
export function sealExceptionMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'object' && error !== null && 'message' in error) {
    const m: unknown = error.message;
    if (Array.isArray(m)) return m.filter((x) => typeof x === 'string').join(': ');
    if (typeof m === 'string') return m;
  }
  return String(error);
}

/**
 * Calls into SEAL and turns a C++ exception into a `CryptoError` with `code`.
 *
 * Not a licence to let untrusted bytes reach SEAL: node-seal 7 leaks 16 bytes of the WASM
 * shadow stack per C++ exception that escapes to JS (embind does not restore the stack
 * pointer), and after a few thousand the module corrupts itself. Everything received from
 * another party is therefore validated in JS first (see `ckks-wire.ts`), so that SEAL never
 * throws on input an attacker controls; this wrapper only names the error when it does.
 */
export function sealCall<T>(code: CryptoErrorCode, what: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof CryptoError) throw error;
    throw new CryptoError(code, `${what}: ${sealExceptionMessage(error)}`, { cause: error });
  }
}
