/**
 * The protocol around homomorphic encryption: the key holder's signed publication of its CKKS
 * public key, clients' signed receipts over what they submit, and the client-side encryptor.
 * Signatures are compact JWS with Ed25519 (jose, WebCrypto: Node and browsers alike).
 */
import { CompactSign, compactVerify, exportJWK, generateKeyPair, importJWK, type CryptoKey } from 'jose';
import { createCkksContext, type CkksContext } from './crypto/ckks-params.js';
import { CkksAggregation } from './crypto/ckks.js';
import { loadPublicKey } from './crypto/keys.js';
import { loadSeal, type LoadSealOptions } from './crypto/seal-runtime.js';
import { ErrorCode, TesseraError } from './errors.js';
import type { Ed25519Jwk, HePublication } from './messages.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** SHA-256 of bytes as lowercase hex (WebCrypto). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** An Ed25519 signing key with its public JWK. */
export interface SigningKey {
  jwk: Ed25519Jwk;
  privateKey: CryptoKey;
}

/** Generates an Ed25519 signing key (receipts, key holder publications). */
export async function generateSigningKey(): Promise<SigningKey> {
  const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const jwk = (await exportJWK(publicKey)) as Ed25519Jwk;
  return { jwk: { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, privateKey };
}

async function sign(key: CryptoKey, payload: unknown): Promise<string> {
  return new CompactSign(enc.encode(JSON.stringify(payload))).setProtectedHeader({ alg: 'EdDSA' }).sign(key);
}

async function verify(jwk: Ed25519Jwk, jws: string, code: ErrorCode, what: string): Promise<unknown> {
  try {
    const key = await importJWK({ kty: 'OKP', crv: 'Ed25519', x: jwk.x }, 'EdDSA');
    const { payload } = await compactVerify(jws, key, { algorithms: ['EdDSA'] });
    return JSON.parse(dec.decode(payload)) as unknown;
  } catch {
    throw new TesseraError(code, `${what}: signature does not verify`);
  }
}

/** What the key holder signs: the parameters and the digest of the public key. */
interface PublicationPayload {
  params: HePublication['params'];
  publicKeySha256: string;
}

/** Key holder: signs its parameters and public key. */
export async function signPublication(key: SigningKey, params: HePublication['params'], publicKey: Uint8Array): Promise<HePublication> {
  const payload: PublicationPayload = { params, publicKeySha256: await sha256Hex(publicKey) };
  return { params, publicKey, keyholderJwk: key.jwk, signature: await sign(key.privateKey, payload) };
}

/**
 * Client: checks a publication against the key holder key it pins. Throws ERR_KEY when the key
 * is not the pinned one, the signature fails, or the parameters / public key were swapped.
 */
export async function verifyPublication(pub: HePublication, pinned: Ed25519Jwk): Promise<void> {
  if (pub.keyholderJwk.x !== pinned.x) throw new TesseraError(ErrorCode.KEY, 'the published key holder key is not the one this client trusts');
  const payload = (await verify(pinned, pub.signature, ErrorCode.KEY, 'key holder publication')) as PublicationPayload;
  if (JSON.stringify(payload.params) !== JSON.stringify(pub.params)) throw new TesseraError(ErrorCode.KEY, 'CKKS parameters differ from the signed ones');
  if (payload.publicKeySha256 !== (await sha256Hex(pub.publicKey))) throw new TesseraError(ErrorCode.KEY, 'public key differs from the signed one');
}

/** A client's receipt: it submitted these ciphertexts (by SHA-256) for this task and round. */
export interface ReceiptPayload {
  taskId: string;
  roundId: number;
  clientId: string;
  ciphertexts: string[];
}

/** Client: signs a receipt over the SHA-256 of each ciphertext it submits. */
export async function signReceipt(key: SigningKey, r: Omit<ReceiptPayload, 'ciphertexts'>, ciphertexts: readonly Uint8Array[]): Promise<string> {
  const payload: ReceiptPayload = { ...r, ciphertexts: await Promise.all(ciphertexts.map(sha256Hex)) };
  return sign(key.privateKey, payload);
}

/** Verifies a receipt with the client's key; throws ERR_RECEIPT on a bad signature or shape. */
export async function verifyReceipt(jwk: Ed25519Jwk, receipt: string): Promise<ReceiptPayload> {
  const p = (await verify(jwk, receipt, ErrorCode.RECEIPT, 'receipt')) as Partial<ReceiptPayload>;
  if (typeof p.taskId !== 'string' || typeof p.roundId !== 'number' || typeof p.clientId !== 'string' || !Array.isArray(p.ciphertexts)) {
    throw new TesseraError(ErrorCode.RECEIPT, 'receipt payload is malformed');
  }
  return p as ReceiptPayload;
}

/**
 * Client-side encryption for one key holder publication: verifies it against the pinned key,
 * then encrypts weighted updates (weight in the spare slot) with the published public key.
 */
export class HeEncryptor {
  private constructor(
    private readonly ctx: CkksContext,
    private readonly scheme: CkksAggregation,
    private readonly release: () => void,
  ) {}

  /** Verifies `pub` (refusing to encrypt otherwise) and prepares SEAL. */
  static async create(pub: HePublication, pinned: Ed25519Jwk | undefined, sealOptions?: LoadSealOptions): Promise<HeEncryptor> {
    if (!pinned) throw new TesseraError(ErrorCode.KEY, 'no trusted key holder key configured: refusing to encrypt');
    await verifyPublication(pub, pinned);
    const { seal } = await loadSeal(sealOptions);
    const ctx = createCkksContext(seal, pub.params);
    const publicKey = loadPublicKey(ctx, pub.publicKey);
    const scheme = new CkksAggregation(ctx, { publicKey });
    return new HeEncryptor(ctx, scheme, () => {
      scheme.dispose();
      publicKey.delete();
      ctx.dispose();
    });
  }

  get slotCount(): number {
    return this.ctx.slotCount;
  }

  /** Encrypts weight·update (the weight also goes in its own slot). */
  encrypt(update: Float32Array, weight: number): Uint8Array[] {
    return this.scheme.encryptUpdate(update, weight);
  }

  dispose(): void {
    this.release();
  }
}
