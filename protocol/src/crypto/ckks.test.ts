/** CKKS specifics the conformance suite cannot see: parameters, keys, wire format, memory. */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CiphertextAccumulator,
  CkksAggregation,
  ciphertextCodec,
  decryptAggregate,
  encryptUpdate,
  sumCiphertexts,
} from './ckks.js';
import { DEFAULT_CKKS_PARAMETERS, createCkksContext, type CkksContext } from './ckks-params.js';
import { CryptoError, type CryptoErrorCode } from './errors.js';
import { generateKeys, loadPublicKey, loadSecretKey, serializePublicKey, serializeSecretKey, type KeyHolderKeys } from './keys.js';
import { loadSeal, type SealModule, type SealRuntime } from './seal-runtime.js';
import { withSeal } from './seal-scope.js';

function expectCode(fn: () => unknown, code: CryptoErrorCode): CryptoError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught, 'expected a CryptoError').toBeInstanceOf(CryptoError);
  expect((caught as CryptoError).code).toBe(code);
  return caught as CryptoError;
}

async function sealWasmBinary(): Promise<Uint8Array> {
  const entry = import.meta.resolve('node-seal'); // …/node-seal/dist/index_throws.js
  return readFile(fileURLToPath(new URL('seal_throws.wasm', entry)));
}

function ramp(length: number, amplitude = 1): Float32Array {
  const u = new Float32Array(length);
  for (let i = 0; i < length; i++) u[i] = amplitude * Math.sin(i * 0.37);
  return u;
}

let seal: SealModule;
let ctx: CkksContext;
let keys: KeyHolderKeys;

beforeAll(async () => {
  ({ seal } = await loadSeal());
  ctx = createCkksContext(seal);
  keys = generateKeys(ctx);
});
afterAll(() => {
  keys?.dispose();
  ctx?.dispose();
});

describe('parameters', () => {
  it('default set: N = 8192, [60, 60], Δ = 2^40, 4096 slots, one 60-bit data prime', () => {
    expect(ctx.params).toEqual({ polyModulusDegree: 8192, coeffModulusBits: [60, 60], scaleBits: 40 });
    expect(ctx.params).toEqual(DEFAULT_CKKS_PARAMETERS);
    expect(ctx.context.parametersSet()).toBe(true);
    expect(ctx.slotCount).toBe(4096);
    expect(ctx.scale).toBe(2 ** 40);
    expect(ctx.dataModulusBits).toEqual([60]);
    expect(ctx.parmsId).toHaveLength(4);
    // q/(4Δ) for a prime just below 2^60
    expect(ctx.maxMagnitude).toBeGreaterThan(2 ** 18 - 1);
    expect(ctx.maxMagnitude).toBeLessThan(2 ** 18);
  });

  it('uses SEAL’s 128-bit table', () => {
    // SEAL 4.1 native/src/seal/util/hestdparms.h, SEAL_HE_STD_PARMS_128_TC: 4096 → 109, 8192 → 218.
    expect(seal.CoeffModulus.MaxBitCount(4096, seal.SecLevelType.tc128)).toBe(109);
    expect(seal.CoeffModulus.MaxBitCount(8192, seal.SecLevelType.tc128)).toBe(218);
  });

  it('rejects parameters that are not 128-bit secure with ERR_CKKS_PARAMETERS', () => {
    const e = expectCode(
      () => createCkksContext(seal, { polyModulusDegree: 4096, coeffModulusBits: [60, 60], scaleBits: 40 }),
      'ERR_CKKS_PARAMETERS',
    );
    expect(e.message).toMatch(/tc128|128-bit/);
    expectCode(() => createCkksContext(seal, { polyModulusDegree: 3000, coeffModulusBits: [60, 60], scaleBits: 40 }), 'ERR_CKKS_PARAMETERS');
    expectCode(() => createCkksContext(seal, { polyModulusDegree: 8192, coeffModulusBits: [], scaleBits: 40 }), 'ERR_CKKS_PARAMETERS');
    // a 40-bit data prime at scale 2^40 has no integer range left
    expectCode(() => createCkksContext(seal, { polyModulusDegree: 8192, coeffModulusBits: [40, 60], scaleBits: 40 }), 'ERR_CKKS_PARAMETERS');
  });

  it('accepts the N = 4096, [50, 50] alternative (2048 slots, 50-bit data prime)', () => {
    const small = createCkksContext(seal, { polyModulusDegree: 4096, coeffModulusBits: [50, 50], scaleBits: 40 });
    try {
      expect(small.slotCount).toBe(2048);
      expect(small.dataModulusBits).toEqual([50]);
      expect(ciphertextCodec(small).wireBytes).toBe(52 + (2 * 4096 * 50) / 8);
    } finally {
      small.dispose();
    }
  });
});

describe('keys', () => {
  it('round-trips public and secret keys through bytes', () => {
    const pkBytes = serializePublicKey(ctx, keys.publicKey);
    const skBytes = serializeSecretKey(ctx, keys.secretKey);
    // the seeded public key is about half the full one (one polynomial replaced by a seed)
    expect(keys.publicKeyBytes.length).toBeLessThan(0.6 * pkBytes.length);
    const pk = loadPublicKey(ctx, pkBytes);
    const sk = loadSecretKey(ctx, skBytes);
    try {
      const update = ramp(50);
      const result = decryptAggregate(ctx, sk, encryptUpdate(ctx, pk, update, 2), 50);
      expect(result.weight).toBe(2);
      expect(result.values[7]).toBeCloseTo(2 * update[7]!, 6);
    } finally {
      pk.delete();
      sk.delete();
    }
  });

  it('rejects key bytes that are not a key with ERR_KEY', () => {
    expectCode(() => loadPublicKey(ctx, new Uint8Array(10)), 'ERR_KEY');
    const truncated = keys.publicKeyBytes.subarray(0, 1000);
    expectCode(() => loadPublicKey(ctx, truncated), 'ERR_KEY');
  });

  it('a role without the needed key fails with ERR_KEY', () => {
    const server = new CkksAggregation(ctx);
    expectCode(() => server.encryptUpdate(ramp(3), 1), 'ERR_KEY');
    expectCode(() => server.decryptAggregate([], 3), 'ERR_KEY');
    server.dispose();
  });

  it('decrypting with another key holder’s secret key does not give the sum', () => {
    const other = generateKeys(ctx);
    try {
      const cts = encryptUpdate(ctx, keys.publicKey, ramp(10), 3);
      // The weight slot decrypts to noise: usually not near an integer (ERR_CIPHERTEXT), and when
      // it happens to round to one, never to the true weight or values.
      let outcome: string;
      try {
        const r = decryptAggregate(ctx, other.secretKey, cts, 10);
        outcome = r.weight !== 3 && Math.abs(r.values[0]! - 3 * 1) > 1 ? 'garbage' : 'decrypted';
      } catch (e) {
        outcome = (e as { code?: string }).code ?? 'threw';
      }
      expect(['ERR_CIPHERTEXT', 'garbage']).toContain(outcome);
    } finally {
      other.dispose();
    }
  });
});

describe('functional API', () => {
  it('encryptUpdate → sumCiphertexts → decryptAggregate', () => {
    const length = 5000;
    const a = ramp(length, 0.5);
    const b = ramp(length, -0.25);
    const sum = sumCiphertexts(ctx, [encryptUpdate(ctx, keys.publicKey, a, 10), encryptUpdate(ctx, keys.publicKey, b, 30)], length);
    expect(sum).toHaveLength(2);
    const result = decryptAggregate(ctx, keys.secretKey, sum, length);
    expect(result.weight).toBe(40);
    let maxErr = 0;
    for (let i = 0; i < length; i++) maxErr = Math.max(maxErr, Math.abs(result.values[i]! - (10 * a[i]! + 30 * b[i]!)));
    expect(maxErr).toBeLessThan(1e-6);
    expectCode(() => sumCiphertexts(ctx, [], length), 'ERR_EMPTY_AGGREGATE');
  });
});

describe('wire format', () => {
  it('is 30 bytes per slot: 2 polys × 8192 residues × 60 bits + a 52-byte header', () => {
    const codec = ciphertextCodec(ctx);
    expect(codec.wireBytes).toBe(52 + (2 * 8192 * 60) / 8);
    expect(codec.sealBytes).toBe(113 + 2 * 8192 * 8);
    const [ct] = encryptUpdate(ctx, keys.publicKey, ramp(10), 1);
    expect(ct!.length).toBe(codec.wireBytes);
    expect(Array.from(ct!.subarray(0, 4), (b) => String.fromCharCode(b)).join('')).toBe('TSCK');
  });

  it('rebuilds exactly the bytes SEAL wrote (pack ∘ unpack = identity)', () => {
    const codec = ciphertextCodec(ctx);
    withSeal((s) => {
      const pt = s.track(new seal.Plaintext());
      const ct = s.track(new seal.Ciphertext());
      const enc = s.track(new seal.Encryptor(ctx.context, keys.publicKey));
      ctx.encoder.encode(Float64Array.from([1, 2, 3]), ctx.scale, pt);
      enc.encrypt(pt, ct);
      const sealBytes = ct.saveToArray(seal.ComprModeType.none) as Uint8Array;
      const wire = codec.pack(sealBytes);
      expect(codec.unpack(wire)).toEqual(sealBytes);
    });
  });

  it('rejects a tampered parms id, scale, or prime count, and a transparent ciphertext', () => {
    const codec = ciphertextCodec(ctx);
    const [ct] = encryptUpdate(ctx, keys.publicKey, ramp(10), 1);
    const cases: [string, (b: Uint8Array) => void][] = [
      ['parms id', (b) => (b[20]! ^= 1)],
      ['scale', (b) => new DataView(b.buffer).setFloat64(12, 2 ** 30, true)],
      ['prime count', (b) => (b[6] = 2)],
      ['ciphertext size', (b) => (b[5] = 3)],
      ['N', (b) => new DataView(b.buffer).setUint32(8, 4096, true)],
      ['transparent', (b) => b.fill(0, 52 + (8192 * 60) / 8)],
      ['residue ≥ q', (b) => b.fill(0xff, 52, 52 + 8)], // the first residue: 60 one-bits
    ];
    for (const [name, tamper] of cases) {
      const bad = ct!.slice();
      tamper(bad);
      const e = expectCode(() => codec.unpack(bad), 'ERR_CIPHERTEXT');
      expect(e.message, name).toMatch(/invalid ciphertext/);
    }
  });
});

describe('memory', () => {
  let runtime: SealRuntime;
  beforeAll(async () => {
    runtime = await loadSeal({ wasmBinary: await sealWasmBinary() });
  });

  const heap = (): number => {
    const bytes = runtime.heapBytes();
    if (bytes === undefined) throw new Error('heap probe unavailable');
    return bytes;
  };

  it('does not grow the WASM heap round after round (30 rounds of 10 clients: encrypt, add, decrypt)', () => {
    const rctx = createCkksContext(runtime.seal);
    const rkeys = generateKeys(rctx);
    const client = new CkksAggregation(rctx, { publicKey: rkeys.publicKey });
    const keyHolder = new CkksAggregation(rctx, { secretKey: rkeys.secretKey });
    const length = rctx.slotCount + 100; // two ciphertexts per client
    const update = ramp(length, 0.1);
    const ballast: { delete(): void }[] = [];
    const sizes: number[] = [];
    const warmUp = 5;
    try {
      for (let round = 0; round < 30; round++) {
        const acc = new CiphertextAccumulator(rctx, length);
        for (let c = 0; c < 10; c++) acc.add(client.encryptUpdate(update, c + 1));
        // rejected submissions are part of a round too
        expect(() => acc.add([new Uint8Array(5)])).toThrow(CryptoError);
        const result = keyHolder.decryptAggregate(acc.result(), length);
        acc.dispose();
        expect(result.weight).toBe(55);
        if (round === warmUp - 1) {
          // Fill the heap's free space with 256 KiB blocks until it grows once, so that the
          // slack a leak could hide in is one growth step (~20 %) instead of the initial 16 MiB.
          const start = heap();
          while (heap() === start) ballast.push(new runtime.seal.Plaintext(32_768));
        }
        sizes.push(heap());
      }
    } finally {
      for (const b of ballast) b.delete();
      client.dispose();
      keyHolder.dispose();
      rkeys.dispose();
      rctx.dispose();
    }
    expect(ballast.length).toBeGreaterThan(0);
    const afterWarmUp = sizes[warmUp - 1]!;
    const mib = sizes.map((s) => (s / 2 ** 20).toFixed(2)).join(', ');
    expect(sizes.slice(warmUp).every((s) => s === afterWarmUp), `heap MiB per round: ${mib}`).toBe(true);
  });

  it('survives thousands of rejected submissions (untrusted bytes never make SEAL throw)', () => {
    // node-seal 7 loses 16 bytes of WASM stack per C++ exception and corrupts itself after a
    // few thousand; rejection must happen in JS.
    const rctx = createCkksContext(runtime.seal);
    const rkeys = generateKeys(rctx);
    const client = new CkksAggregation(rctx, { publicKey: rkeys.publicKey });
    const keyHolder = new CkksAggregation(rctx, { secretKey: rkeys.secretKey });
    try {
      const [valid] = client.encryptUpdate(ramp(10), 1);
      const wrongScale = valid!.slice();
      new DataView(wrongScale.buffer).setFloat64(12, 2 ** 30, true);
      const unreduced = valid!.slice();
      unreduced.fill(0xff, 52 + 1000, 52 + 1016); // covers one whole 60-bit residue
      const acc = new CiphertextAccumulator(rctx, 10);
      for (let i = 0; i < 6000; i++) {
        const bad = [wrongScale, unreduced, valid!.subarray(1)][i % 3]!;
        expect(() => acc.add([bad])).toThrow(CryptoError);
      }
      acc.add([valid!]);
      expect(keyHolder.decryptAggregate(acc.result(), 10).weight).toBe(1);
      acc.dispose();
    } finally {
      client.dispose();
      keyHolder.dispose();
      rkeys.dispose();
      rctx.dispose();
    }
  });
});
