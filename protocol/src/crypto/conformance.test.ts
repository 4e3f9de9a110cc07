/**
 * One conformance suite for every AggregationScheme (CKKS and the plaintext reference), in the
 * roles they are used in: a client encrypts, the server (no key) sums, the key holder decrypts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CkksAggregation } from './ckks.js';
import { createCkksContext, type CkksContext } from './ckks-params.js';
import { CryptoError, type CryptoErrorCode } from './errors.js';
import { generateKeys, loadPublicKey, loadSecretKey, type KeyHolderKeys } from './keys.js';
import { PlainAggregation } from './plain.js';
import type { AggregationScheme } from './scheme.js';
import { loadSeal } from './seal-runtime.js';

/** The roles of one deployment, plus schemes of the same kind under other parameters. */
interface Deployment {
  client: AggregationScheme;
  server: AggregationScheme;
  keyHolder: AggregationScheme;
  /** Same kind of scheme, other parameters (their ciphertexts must be rejected). */
  foreign: AggregationScheme[];
  dispose(): void;
}

interface Implementation {
  name: string;
  setup(): Promise<Deployment>;
}

const ckks: Implementation = {
  name: 'ckks',
  async setup() {
    const { seal } = await loadSeal();
    const ctx = createCkksContext(seal);
    const keys = generateKeys(ctx);
    // The client and key holder hold only what travels to them: key bytes.
    const publicKey = loadPublicKey(ctx, keys.publicKeyBytes);
    const secretKey = loadSecretKey(ctx, keyHolderSecret(ctx, keys));
    const client = new CkksAggregation(ctx, { publicKey });
    const server = new CkksAggregation(ctx);
    const keyHolder = new CkksAggregation(ctx, { secretKey });
    const others: { ctx: CkksContext; keys: KeyHolderKeys; scheme: CkksAggregation }[] = [
      { polyModulusDegree: 4096, coeffModulusBits: [50, 50], scaleBits: 40 }, // other N, other prime
      { polyModulusDegree: 8192, coeffModulusBits: [60, 60], scaleBits: 30 }, // same size, other scale
      { polyModulusDegree: 8192, coeffModulusBits: [60, 40, 60], scaleBits: 40 }, // two data primes
    ].map((params) => {
      const c = createCkksContext(seal, params);
      const k = generateKeys(c);
      return { ctx: c, keys: k, scheme: new CkksAggregation(c, { publicKey: k.publicKey }) };
    });
    return {
      client,
      server,
      keyHolder,
      foreign: others.map((o) => o.scheme),
      dispose() {
        for (const s of [client, server, keyHolder]) s.dispose();
        publicKey.delete();
        secretKey.delete();
        keys.dispose();
        ctx.dispose();
        for (const o of others) {
          o.scheme.dispose();
          o.keys.dispose();
          o.ctx.dispose();
        }
      },
    };
  },
};

function keyHolderSecret(ctx: CkksContext, keys: KeyHolderKeys): Uint8Array {
  return keys.secretKey.saveToArray(ctx.seal.ComprModeType.zstd) as Uint8Array;
}

const plain: Implementation = {
  name: 'plain',
  async setup() {
    const scheme = new PlainAggregation();
    return {
      client: scheme,
      server: scheme,
      keyHolder: scheme,
      foreign: [new PlainAggregation({ slotCount: 2048 }), new PlainAggregation({ slotCount: 8192 })],
      dispose() {},
    };
  },
};

/** Deterministic test data (xorshift32); the data need not be secret, only reproducible. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

function randomUpdate(length: number, rand: () => number, amplitude = 1): Float32Array {
  const u = new Float32Array(length);
  for (let i = 0; i < length; i++) u[i] = (rand() * 2 - 1) * amplitude;
  return u;
}

function expectCode(fn: () => unknown, code: CryptoErrorCode): void {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught, 'expected a CryptoError').toBeInstanceOf(CryptoError);
  expect((caught as CryptoError).code).toBe(code);
}

/** MLP 784-128-10: 784·128 + 128 + 128·10 + 10. */
const MLP_PARAMS = 101_770;

describe.each([ckks, plain])('AggregationScheme conformance: $name', (impl) => {
  let d: Deployment;
  beforeAll(async () => {
    d = await impl.setup();
  });
  afterAll(() => d?.dispose());

  function aggregate(updates: readonly { update: Float32Array | Float32Array[]; weight: number }[], length: number) {
    const acc = d.server.createAccumulator(length);
    try {
      for (const u of updates) acc.add(d.client.encryptUpdate(u.update, u.weight));
      expect(acc.count).toBe(updates.length);
      return d.keyHolder.decryptAggregate(acc.result(), length);
    } finally {
      acc.dispose();
    }
  }

  it('sums 10 clients’ weighted MLP-sized updates: weighted mean within 1e-6 of float64, weight exact', () => {
    // Compared: (decrypted Σ wᵢ·uᵢ) / (decrypted Σ wᵢ) against the float64 weighted mean
    // Σ wᵢ·uᵢ / Σ wᵢ computed from the same float32 updates, element by element.
    const rand = prng(20240611);
    const clients = Array.from({ length: 10 }, () => ({
      update: randomUpdate(MLP_PARAMS, rand, 0.5),
      weight: 1 + Math.floor(rand() * 1000),
    }));
    const totalWeight = clients.reduce((a, c) => a + c.weight, 0);
    const expectedSum = new Float64Array(MLP_PARAMS);
    for (const c of clients) for (let i = 0; i < MLP_PARAMS; i++) expectedSum[i]! += c.weight * c.update[i]!;

    const result = aggregate(clients, MLP_PARAMS);

    expect(result.weight).toBe(totalWeight);
    expect(result.values.length).toBe(MLP_PARAMS);
    let maxErr = 0;
    for (let i = 0; i < MLP_PARAMS; i++) {
      maxErr = Math.max(maxErr, Math.abs(result.values[i]! / result.weight - expectedSum[i]! / totalWeight));
    }
    expect(maxErr).toBeLessThanOrEqual(1e-6);
    // The un-normalized sum is close too (CKKS noise is ~1e-8 per slot at scale 2^40).
    let maxSumErr = 0;
    for (let i = 0; i < MLP_PARAMS; i++) maxSumErr = Math.max(maxSumErr, Math.abs(result.values[i]! - expectedSum[i]!));
    expect(maxSumErr).toBeLessThanOrEqual(1e-6);
  });

  it('sums the weight slot exactly up to the range limit', () => {
    const weights = [100_000, 100_000, 62_143]; // Σ = 262 143 < maxMagnitude
    expect(weights.reduce((a, b) => a + b, 0)).toBeLessThan(d.server.maxMagnitude);
    const rand = prng(7);
    const result = aggregate(
      weights.map((weight) => ({ update: randomUpdate(300, rand, 1e-3), weight })),
      300,
    );
    expect(result.weight).toBe(262_143);
  });

  it('packs a vector longer than one ciphertext across ciphertexts, in order', () => {
    const s = d.client.slotCount;
    const length = 2 * s + 5;
    const update = new Float32Array(length);
    for (let i = 0; i < length; i++) update[i] = ((i % 1000) - 500) / 512; // exact in float32
    const cts = d.client.encryptUpdate(update, 3);
    expect(cts.length).toBe(3);
    const acc = d.server.createAccumulator(length);
    acc.add(cts);
    const result = d.keyHolder.decryptAggregate(acc.result(), length);
    acc.dispose();
    expect(result.weight).toBe(3);
    for (const i of [0, 1, s - 1, s, s + 1, 2 * s - 1, 2 * s, length - 1]) {
      expect(result.values[i]).toBeCloseTo(3 * update[i]!, 6);
    }
  });

  it('gives the weight a ciphertext of its own when the length is a multiple of slotCount', () => {
    const s = d.client.slotCount;
    const update = new Float32Array(2 * s).fill(0.25);
    const cts = d.client.encryptUpdate(update, 4);
    expect(cts.length).toBe(3);
    const acc = d.server.createAccumulator(2 * s);
    acc.add(cts);
    acc.add(d.client.encryptUpdate(update, 6));
    const result = d.keyHolder.decryptAggregate(acc.result(), 2 * s);
    acc.dispose();
    expect(result.weight).toBe(10);
    expect(result.values[0]).toBeCloseTo(2.5, 6);
    expect(result.values[2 * s - 1]).toBeCloseTo(2.5, 6);
  });

  it('accepts a list of tensors as one concatenated update', () => {
    const a = new Float32Array([0.5, -0.25]);
    const b = new Float32Array([1, 2, -3]);
    const acc = d.server.createAccumulator(5);
    acc.add(d.client.encryptUpdate([a, b], 2));
    const result = d.keyHolder.decryptAggregate(acc.result(), 5);
    acc.dispose();
    expect(result.weight).toBe(2);
    expect(Array.from(result.values, (v) => Math.round(v * 1e6) / 1e6)).toEqual([1, -0.5, 2, 4, -6]);
  });

  describe('empty input', () => {
    it('refuses the result of an accumulator with no submission', () => {
      const acc = d.server.createAccumulator(10);
      expectCode(() => acc.result(), 'ERR_EMPTY_AGGREGATE');
      acc.dispose();
    });

    it('carries a zero-length update as the weight alone', () => {
      const cts = d.client.encryptUpdate(new Float32Array(0), 5);
      expect(cts.length).toBe(1);
      const acc = d.server.createAccumulator(0);
      acc.add(cts);
      acc.add(d.client.encryptUpdate([], 2));
      const result = d.keyHolder.decryptAggregate(acc.result(), 0);
      acc.dispose();
      expect(result.values.length).toBe(0);
      expect(result.weight).toBe(7);
    });

    it('rejects an empty ciphertext list and an empty ciphertext', () => {
      const acc = d.server.createAccumulator(10);
      expectCode(() => acc.add([]), 'ERR_CIPHERTEXT');
      expectCode(() => acc.add([new Uint8Array(0)]), 'ERR_CIPHERTEXT');
      expectCode(() => d.keyHolder.decryptAggregate([], 10), 'ERR_CIPHERTEXT');
      expect(acc.count).toBe(0);
      acc.dispose();
    });
  });

  describe('rejects bad ciphertexts with ERR_CIPHERTEXT', () => {
    const length = 100;
    let valid: Uint8Array[];
    beforeAll(() => {
      valid = d.client.encryptUpdate(randomUpdate(length, prng(3)), 1);
    });

    function rejected(cts: Uint8Array[]): void {
      const acc = d.server.createAccumulator(length);
      expectCode(() => acc.add(cts), 'ERR_CIPHERTEXT');
      expect(acc.count).toBe(0);
      acc.dispose();
      expectCode(() => d.keyHolder.decryptAggregate(cts, length), 'ERR_CIPHERTEXT');
    }

    it('made under other parameters', () => {
      expect(d.foreign.length).toBeGreaterThan(0);
      for (const other of d.foreign) rejected(other.encryptUpdate(randomUpdate(length, prng(4)), 1));
    });

    it('truncated, or with a byte appended', () => {
      rejected([valid[0]!.subarray(0, valid[0]!.length - 1)]);
      rejected([valid[0]!.subarray(0, 16)]);
      const longer = new Uint8Array(valid[0]!.length + 1);
      longer.set(valid[0]!);
      rejected([longer]);
    });

    it('corrupt header or body', () => {
      const badMagic = valid[0]!.slice();
      badMagic[0]! ^= 0xff;
      rejected([badMagic]);
      const badVersion = valid[0]!.slice();
      badVersion[4] = 99;
      rejected([badVersion]);
      // All-ones body: residues ≥ their prime (CKKS), NaN values (plain).
      const badBody = valid[0]!.slice();
      badBody.fill(0xff, 64);
      rejected([badBody]);
    });

    it('the wrong number of ciphertexts', () => {
      rejected([valid[0]!, valid[0]!]);
      const acc = d.server.createAccumulator(d.client.slotCount + 10); // needs 2 ciphertexts
      expectCode(() => acc.add(valid), 'ERR_CIPHERTEXT');
      acc.dispose();
    });

    it('all or nothing: a rejected submission leaves the sum unchanged', () => {
      const s = d.client.slotCount;
      const len = s + 10;
      const rand = prng(11);
      const a = randomUpdate(len, rand);
      const b = randomUpdate(len, rand);
      const acc = d.server.createAccumulator(len);
      acc.add(d.client.encryptUpdate(a, 1));
      const bad = d.client.encryptUpdate(randomUpdate(len, rand), 1);
      bad[1] = bad[1]!.subarray(1); // first ciphertext valid, second truncated
      expectCode(() => acc.add(bad), 'ERR_CIPHERTEXT');
      acc.add(d.client.encryptUpdate(b, 1));
      expect(acc.count).toBe(2);
      const result = d.keyHolder.decryptAggregate(acc.result(), len);
      acc.dispose();
      expect(result.weight).toBe(2);
      let maxErr = 0;
      for (let i = 0; i < len; i++) maxErr = Math.max(maxErr, Math.abs(result.values[i]! - (a[i]! + b[i]!)));
      expect(maxErr).toBeLessThan(1e-6);
    });
  });

  it('refuses updates it cannot carry exactly with ERR_INVALID_UPDATE', () => {
    expectCode(() => d.client.encryptUpdate(new Float32Array([1, Number.NaN]), 1), 'ERR_INVALID_UPDATE');
    expectCode(() => d.client.encryptUpdate(new Float32Array([Infinity]), 1), 'ERR_INVALID_UPDATE');
    expectCode(() => d.client.encryptUpdate(new Float32Array([1]), 1.5), 'ERR_INVALID_UPDATE');
    expectCode(() => d.client.encryptUpdate(new Float32Array([1]), -1), 'ERR_INVALID_UPDATE');
    expectCode(() => d.client.encryptUpdate(new Float32Array([1]), 2 ** 20), 'ERR_INVALID_UPDATE');
    expectCode(() => d.client.encryptUpdate(new Float32Array([1000]), 1000), 'ERR_INVALID_UPDATE');
  });
});
