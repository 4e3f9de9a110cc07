/**
 * Tessera's wire format for CKKS ciphertexts: SEAL's uncompressed serialization with each RNS
 * residue bit-packed to the width of its prime, behind a small header.
 *
 * Why not SEAL's built-in zstd (`ComprModeType.zstd`): a fresh ciphertext's coefficients are
 * uniform modulo a 60-bit prime, stored in 64-bit words; no general-purpose compressor can
 * remove more than the 4 always-zero high bits, and zstd removes none of them (measured
 * 32.03 B/slot with zstd vs 32.03 uncompressed; zlib 31.76). Packing each residue to 60 bits
 * is exact and reaches the entropy floor, 30 B/slot. It needs no compressor in the browser.
 *
 * Why validate in JS: the server and key holder rebuild SEAL's bytes from a fully checked
 * header and residues (< their prime), so SEAL's `load` never throws on what a client sent —
 * node-seal 7 leaks WASM stack on every C++ exception (see `sealCall`). A submission made
 * under other parameters differs in N, scale, prime count or parms id and is rejected here.
 *
 * Layout (little-endian):
 *
 *   0   4  magic "TSCK"
 *   4   1  format version (1)
 *   5   1  ciphertext size (polynomials) = 2
 *   6   1  k = number of data primes
 *   7   1  reserved = 0
 *   8   4  N (poly modulus degree)
 *   12  8  scale (float64)
 *   20  32 parms id (4 × uint64)
 *   52  …  residues: for each polynomial, for each prime j, N residues of bits(qⱼ) bits,
 *          one LSB-first bit stream (2·N·bits is always a whole number of bytes)
 */
import { CryptoError } from './errors.js';
import type { CkksContext } from './ckks-params.js';

const MAGIC = [0x54, 0x53, 0x43, 0x4b]; // "TSCK"
const FORMAT_VERSION = 1;
const WIRE_HEADER = 52;
const CIPHERTEXT_SIZE = 2;

// SEAL 4.1 serialization constants (native/src/seal/serialization.h).
const SEAL_MAGIC = 0xa15e;
const SEAL_HEADER = 16;
const SEAL_VERSION_MAJOR = 4;
const SEAL_VERSION_MINOR = 1;
/** SEAL header + parms id + ntt flag + size + N + k + scale + correction factor. */
const SEAL_META = SEAL_HEADER + 32 + 1 + 8 + 8 + 8 + 8 + 8;
/** + DynArray's own header and element count. */
const SEAL_DATA = SEAL_META + SEAL_HEADER + 8;

// Residues are read and written as uint32 words through typed arrays, which use the host's
// byte order; SEAL's and Tessera's formats are little-endian, as is every WASM host we know.
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function reject(why: string): never {
  throw new CryptoError('ERR_CIPHERTEXT', `invalid ciphertext: ${why}`);
}

/** Converts between SEAL's uncompressed ciphertext bytes and Tessera's packed wire bytes. */
export interface CiphertextCodec {
  /** Exact size of one ciphertext on the wire. */
  readonly wireBytes: number;
  /** Exact size of SEAL's uncompressed serialization (`ComprModeType.none`). */
  readonly sealBytes: number;
  /** Packs a ciphertext that SEAL just saved with `ComprModeType.none` under this context. */
  pack(seal: Uint8Array): Uint8Array;
  /** Validates wire bytes from another party and rebuilds SEAL's bytes; throws `ERR_CIPHERTEXT`. */
  unpack(wire: Uint8Array): Uint8Array;
}

/** The codec for fresh (size-2, first-level) ciphertexts of `ctx`. */
export function createCiphertextCodec(ctx: CkksContext): CiphertextCodec {
  const n = ctx.params.polyModulusDegree;
  const k = ctx.dataModuli.length;
  const bits = ctx.dataModulusBits;
  const residues = CIPHERTEXT_SIZE * k * n;
  const sealBytes = SEAL_DATA + 8 * residues;
  const packedBits = CIPHERTEXT_SIZE * n * bits.reduce((a, b) => a + b, 0);
  const wireBytes = WIRE_HEADER + Math.ceil(packedBits / 8);
  const streamWords = Math.ceil(packedBits / 32);
  const qLo = ctx.dataModuli.map((q) => Number(q & 0xffffffffn));
  const qHi = ctx.dataModuli.map((q) => Number(q >> 32n));
  for (const b of bits) if (b > 60 || b < 1) throw new CryptoError('ERR_CKKS_PARAMETERS', `cannot pack ${b}-bit primes`);
  if (!LITTLE_ENDIAN) throw new CryptoError('ERR_CKKS_PARAMETERS', 'the CKKS wire codec needs a little-endian host');

  // The bytes SEAL writes before the residues for a valid fresh ciphertext of this context.
  const prefix = new Uint8Array(SEAL_DATA);
  {
    const v = new DataView(prefix.buffer);
    writeSealHeader(v, 0, sealBytes);
    ctx.parmsId.forEach((w, i) => v.setBigUint64(SEAL_HEADER + 8 * i, w, true));
    v.setUint8(48, 1); // is_ntt_form: CKKS ciphertexts live in NTT form
    v.setBigUint64(49, BigInt(CIPHERTEXT_SIZE), true);
    v.setBigUint64(57, BigInt(n), true);
    v.setBigUint64(65, BigInt(k), true);
    v.setFloat64(73, ctx.scale, true);
    v.setBigUint64(81, 1n, true); // correction factor (BGV only; 1 for CKKS)
    writeSealHeader(v, SEAL_META, SEAL_HEADER + 8 + 8 * residues);
    v.setBigUint64(SEAL_META + SEAL_HEADER, BigInt(residues), true);
  }
  const header = new Uint8Array(WIRE_HEADER);
  {
    const v = new DataView(header.buffer);
    MAGIC.forEach((b, i) => v.setUint8(i, b));
    v.setUint8(4, FORMAT_VERSION);
    v.setUint8(5, CIPHERTEXT_SIZE);
    v.setUint8(6, k);
    v.setUint8(7, 0);
    v.setUint32(8, n, true);
    v.setFloat64(12, ctx.scale, true);
    ctx.parmsId.forEach((w, i) => v.setBigUint64(20 + 8 * i, w, true));
  }

  return {
    wireBytes,
    sealBytes,
    pack(seal) {
      if (seal.length !== sealBytes || !startsWith(seal, prefix)) {
        // Our own SEAL output: a mismatch means node-seal's format changed, not bad input.
        throw new Error(`ckks-wire: SEAL serialization does not match the expected layout (${seal.length} bytes)`);
      }
      // Residues as (lo, hi) uint32 pairs, copied to an aligned buffer (they start at byte 113).
      const src = new Uint32Array(seal.buffer.slice(seal.byteOffset + SEAL_DATA, seal.byteOffset + sealBytes));
      const words = new Uint32Array(streamWords);
      let w = 0;
      let buf = 0; // pending bits, LSB first
      let cnt = 0; // number of pending bits, < 32
      const put = (v: number, nbits: number): void => {
        // v < 2^nbits, 1 ≤ nbits ≤ 32
        buf = (buf | (v << cnt)) >>> 0;
        if (cnt + nbits >= 32) {
          words[w++] = buf;
          buf = cnt === 0 ? 0 : v >>> (32 - cnt);
          cnt = cnt + nbits - 32;
        } else {
          cnt += nbits;
        }
      };
      let r = 0;
      for (let p = 0; p < CIPHERTEXT_SIZE; p++) {
        for (let j = 0; j < k; j++) {
          const b = bits[j]!;
          for (let i = 0; i < n; i++, r += 2) {
            if (b > 32) {
              put(src[r]!, 32);
              put(src[r + 1]!, b - 32);
            } else {
              put(src[r]!, b);
            }
          }
        }
      }
      if (cnt > 0) words[w++] = buf;
      const out = new Uint8Array(wireBytes);
      out.set(header);
      out.set(new Uint8Array(words.buffer, 0, wireBytes - WIRE_HEADER), WIRE_HEADER);
      return out;
    },
    unpack(wire) {
      if (!(wire instanceof Uint8Array)) reject('not a byte array');
      if (wire.length !== wireBytes) {
        reject(`expected ${wireBytes} bytes, got ${wire.length} (truncated, or other parameters)`);
      }
      for (let i = 0; i < 4; i++) if (wire[i] !== MAGIC[i]) reject('bad magic (not a Tessera CKKS ciphertext)');
      if (wire[4] !== FORMAT_VERSION) reject(`unsupported format version ${wire[4]}`);
      if (wire[5] !== CIPHERTEXT_SIZE) reject(`ciphertext size ${wire[5]}, expected ${CIPHERTEXT_SIZE}`);
      if (wire[6] !== k || wire[7] !== 0) reject(`${wire[6]} data primes, expected ${k}`);
      const hv = new DataView(wire.buffer, wire.byteOffset, WIRE_HEADER);
      if (hv.getUint32(8, true) !== n) reject(`N = ${hv.getUint32(8, true)}, expected ${n}`);
      if (hv.getFloat64(12, true) !== ctx.scale) reject(`scale ${hv.getFloat64(12, true)}, expected ${ctx.scale}`);
      for (let i = 0; i < 4; i++) {
        if (hv.getBigUint64(20 + 8 * i, true) !== ctx.parmsId[i]) reject('parms id does not match the task parameters');
      }

      const stream = new Uint8Array(streamWords * 4);
      stream.set(wire.subarray(WIRE_HEADER));
      const words = new Uint32Array(stream.buffer);
      const dst = new Uint32Array(2 * residues);
      let w = 0;
      let buf = 0; // unread bits, LSB first
      let cnt = 0; // number of unread bits, < 32
      const get = (nbits: number): number => {
        // 1 ≤ nbits ≤ 32
        if (cnt >= nbits) {
          const v = nbits === 32 ? buf : buf & ((1 << nbits) - 1);
          buf = nbits === 32 ? 0 : buf >>> nbits;
          cnt -= nbits;
          return v >>> 0;
        }
        const next = words[w++]!;
        const v = cnt === 0 ? next : (buf | (next << cnt)) >>> 0;
        const need = nbits - cnt; // bits taken from `next`, 1..32
        buf = need === 32 ? 0 : next >>> need;
        cnt = 32 - need;
        return nbits === 32 ? v : (v & ((1 << nbits) - 1)) >>> 0;
      };
      let r = 0;
      let nonzeroC1 = false;
      for (let p = 0; p < CIPHERTEXT_SIZE; p++) {
        for (let j = 0; j < k; j++) {
          const b = bits[j]!;
          const ql = qLo[j]!;
          const qh = qHi[j]!;
          for (let i = 0; i < n; i++, r += 2) {
            const lo = b > 32 ? get(32) : get(b);
            const hi = b > 32 ? get(b - 32) : 0;
            if (hi > qh || (hi === qh && lo >= ql)) reject(`residue ${i} of prime ${j} is not reduced modulo the prime`);
            if (p === 1 && (lo !== 0 || hi !== 0)) nonzeroC1 = true;
            dst[r] = lo;
            dst[r + 1] = hi;
          }
        }
      }
      // 2·N·bits is a multiple of 2048 (N ≥ 1024), so the stream has no padding bits to check.
      if (!nonzeroC1) reject('transparent ciphertext (second polynomial is zero): it is not encrypted');
      const out = new Uint8Array(sealBytes);
      out.set(prefix);
      out.set(new Uint8Array(dst.buffer), SEAL_DATA);
      return out;
    },
  };
}

function writeSealHeader(v: DataView, at: number, size: number): void {
  v.setUint16(at, SEAL_MAGIC, true);
  v.setUint8(at + 2, SEAL_HEADER);
  v.setUint8(at + 3, SEAL_VERSION_MAJOR);
  v.setUint8(at + 4, SEAL_VERSION_MINOR);
  v.setUint8(at + 5, 0); // compr_mode_type::none
  v.setUint16(at + 6, 0, true);
  v.setBigUint64(at + 8, BigInt(size), true);
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}
