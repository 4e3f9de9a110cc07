import type { MainModule } from 'node-seal';

/** The node-seal 7 runtime (Emscripten module with SEAL's embind classes). */
export type SealModule = MainModule;

/** A loaded SEAL runtime, with a probe of its WASM linear memory. */
export interface SealRuntime {
  readonly seal: SealModule;
  /**
   * Current size of the WASM heap in bytes (it only ever grows), or `undefined` when node-seal
   * instantiated the module itself: node-seal 7 does not expose its memory, so the probe needs
   * the binary passed as `wasmBinary`.
   */
  heapBytes(): number | undefined;
}

export interface LoadSealOptions {
  /**
   * The bytes of node-seal's `seal_throws.wasm`. When given, Tessera instantiates the module
   * itself (`instantiateWasm` hook) and can report `heapBytes()`. Node: read it from
   * `node_modules/node-seal/dist/`; browser: `await (await fetch(url)).arrayBuffer()`.
   */
  readonly wasmBinary?: ArrayBuffer | ArrayBufferView;
  /** Passed to Emscripten to find `seal_throws.wasm` when `wasmBinary` is not given. */
  readonly locateFile?: (path: string) => string;
}

type InstantiateWasm = (
  imports: WebAssembly.Imports,
  done: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void,
) => object;

/**
 * Loads node-seal (the variant that throws on transparent ciphertexts). Works in Node and in
 * browsers; node-seal itself is imported lazily so that importing `@tessera/protocol` costs
 * nothing for tasks without HE. Without options one instance is shared per process; with
 * `wasmBinary`/`locateFile` each call creates a separate WASM instance.
 * @example
 * const { seal } = await loadSeal();
 * const ctx = createCkksContext(seal);
 */
let shared: Promise<SealRuntime> | undefined;

export async function loadSeal(options: LoadSealOptions = {}): Promise<SealRuntime> {
  // The default runtime is shared by every caller in the process: each instance is a separate
  // WASM module with its own heap that is never returned to the OS.
  if (options.wasmBinary === undefined && options.locateFile === undefined) {
    shared ??= loadSealInstance({});
    return shared;
  }
  return loadSealInstance(options);
}

async function loadSealInstance(options: LoadSealOptions): Promise<SealRuntime> {
  const { initialize } = await import('node-seal');
  const base = options.locateFile ? { locateFile: options.locateFile } : {};
  if (options.wasmBinary === undefined) {
    const seal = await initialize(base);
    return { seal, heapBytes: () => undefined };
  }
  const bin = options.wasmBinary;
  // A copy owned by a plain ArrayBuffer (a Node Buffer may be a view into a shared pool).
  const bytes = bin instanceof ArrayBuffer ? bin : new Uint8Array(bin.buffer, bin.byteOffset, bin.byteLength).slice();
  const compiled = await WebAssembly.compile(bytes);
  let memory: WebAssembly.Memory | undefined;
  let fail: (error: unknown) => void = () => {};
  const failed = new Promise<never>((_, reject) => {
    fail = reject;
  });
  const instantiateWasm: InstantiateWasm = (imports, done) => {
    WebAssembly.instantiate(compiled, imports).then((instance) => {
      memory = Object.values(instance.exports).find(
        (e): e is WebAssembly.Memory => e instanceof WebAssembly.Memory,
      );
      done(instance, compiled);
    }, fail);
    return {};
  };
  const seal = await Promise.race([initialize({ ...base, instantiateWasm }), failed]);
  return { seal, heapBytes: () => memory?.buffer.byteLength };
}
