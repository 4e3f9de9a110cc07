import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import { io, type Socket } from 'socket.io-client';
import {
  CkksAggregation,
  createCkksContext,
  DEFAULT_CKKS_PARAMETERS,
  decryptRequestSchema,
  ErrorCode,
  Events,
  generateKeys,
  loadPublicKey,
  loadSeal,
  loadSecretKey,
  parseMessage,
  PROTOCOL_VERSION,
  serializeSecretKey,
  signPublication,
  simpleAckSchema,
  TesseraError,
  toErrorBody,
  verifyReceipt,
  type CkksContext,
  type CkksParameters,
  type ClientToServerEvents,
  type DecryptAck,
  type DecryptRequest,
  type Ed25519Jwk,
  type HePublication,
  type ServerToClientEvents,
  type SigningKey,
} from '@tessera/protocol';

export interface KeyHolderOptions {
  /** Directory for the CKKS keys, the signing key and the decryption log (created 0700). */
  keysDir: string;
  /** Distinct valid client receipts required before decrypting a round's aggregate. */
  minClients: number;
  params?: CkksParameters;
  log?: (line: string) => void;
}

const FILES = {
  params: 'ckks-params.json',
  secretKey: 'ckks-secret.key',
  publicKey: 'ckks-public.key',
  jws: 'keyholder-jws.jwk.json',
  jwsPublic: 'keyholder-jws.pub.jwk.json',
  log: 'decryptions.json',
};

/**
 * The key holder: generates and keeps the CKKS secret key (file mode 0600), publishes the public
 * key signed with its own Ed25519 key, and decrypts only round aggregates — at most once per
 * (task, round), and only with at least `minClients` distinct valid client receipts. It never
 * receives an individual ciphertext. It connects out to the server like a client.
 */
export class KeyHolder {
  private socket: Socket<ServerToClientEvents, ClientToServerEvents> | undefined;
  private readonly decrypted: Set<string>;

  private constructor(
    private readonly opts: KeyHolderOptions,
    private readonly ctx: CkksContext,
    private readonly scheme: CkksAggregation,
    private readonly publicKey: Uint8Array,
    private readonly signing: SigningKey,
    private readonly release: () => void,
  ) {
    const logFile = join(opts.keysDir, FILES.log);
    this.decrypted = new Set(existsSync(logFile) ? (JSON.parse(readFileSync(logFile, 'utf8')) as string[]) : []);
  }

  /** Loads the keys from `keysDir`, generating them on first use. */
  static async open(opts: KeyHolderOptions): Promise<KeyHolder> {
    const dir = opts.keysDir;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const path = (f: string) => join(dir, f);
    const { seal } = await loadSeal();
    const params: CkksParameters = existsSync(path(FILES.params)) ? (JSON.parse(readFileSync(path(FILES.params), 'utf8')) as CkksParameters) : (opts.params ?? DEFAULT_CKKS_PARAMETERS);
    const ctx = createCkksContext(seal, params);
    let publicKeyBytes: Uint8Array;
    let secretKey;
    if (existsSync(path(FILES.secretKey))) {
      secretKey = loadSecretKey(ctx, readFileSync(path(FILES.secretKey)));
      publicKeyBytes = new Uint8Array(readFileSync(path(FILES.publicKey)));
    } else {
      const keys = generateKeys(ctx);
      secretKey = keys.secretKey;
      publicKeyBytes = keys.publicKeyBytes;
      keys.publicKey.delete();
      writeFileSync(path(FILES.secretKey), serializeSecretKey(ctx, secretKey), { mode: 0o600 });
      writeFileSync(path(FILES.publicKey), publicKeyBytes, { mode: 0o644 });
      writeFileSync(path(FILES.params), JSON.stringify(params), { mode: 0o644 });
    }
    chmodSync(path(FILES.secretKey), 0o600);
    // Check the stored public key loads under the parameters before publishing it.
    loadPublicKey(ctx, publicKeyBytes).delete();
    let jwk: JWK;
    if (existsSync(path(FILES.jws))) {
      jwk = JSON.parse(readFileSync(path(FILES.jws), 'utf8')) as JWK;
    } else {
      const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
      jwk = await exportJWK(privateKey);
      writeFileSync(path(FILES.jws), JSON.stringify(jwk), { mode: 0o600 });
    }
    const publicJwk: Ed25519Jwk = { kty: 'OKP', crv: 'Ed25519', x: String(jwk.x) };
    writeFileSync(path(FILES.jwsPublic), JSON.stringify(publicJwk), { mode: 0o644 });
    const privateKey = (await importJWK({ ...jwk, alg: 'EdDSA' }, 'EdDSA')) as CryptoKey;
    const scheme = new CkksAggregation(ctx, { secretKey });
    return new KeyHolder(opts, ctx, scheme, publicKeyBytes, { jwk: publicJwk, privateKey }, () => {
      scheme.dispose();
      secretKey.delete();
      ctx.dispose();
    });
  }

  /** Path of the public signing key clients must pin (`tessera client --keyholder-key FILE`). */
  get publicJwkFile(): string {
    return join(this.opts.keysDir, FILES.jwsPublic);
  }

  get signingJwk(): Ed25519Jwk {
    return this.signing.jwk;
  }

  /** The signed publication of the public key and parameters. */
  publication(): Promise<HePublication> {
    return signPublication(this.signing, this.ctx.params as HePublication['params'], this.publicKey);
  }

  private say(line: string): void {
    this.opts.log?.(`[keyholder] ${line}`);
  }

  /**
   * Decrypts one round's aggregate after checking the receipts: ≥ minClients distinct clients
   * with valid signatures for this task and round, and never the same (task, round) twice.
   */
  async decrypt(req: DecryptRequest): Promise<{ values: Float64Array; weight: number }> {
    const key = `${req.taskId}#${req.roundId}`;
    if (this.decrypted.has(key)) throw new TesseraError(ErrorCode.REPLAY, `round ${req.roundId} of ${req.taskId} was already decrypted`);
    const clients = new Set<string>();
    const keys = new Set<string>();
    for (const r of req.receipts) {
      try {
        const p = await verifyReceipt(r.receiptKey, r.receipt);
        if (p.taskId !== req.taskId || p.roundId !== req.roundId || p.clientId !== r.clientId) continue;
        if (clients.has(p.clientId) || keys.has(r.receiptKey.x)) continue;
        clients.add(p.clientId);
        keys.add(r.receiptKey.x);
      } catch {
        /* an invalid receipt simply does not count */
      }
    }
    if (clients.size < this.opts.minClients) {
      throw new TesseraError(ErrorCode.RECEIPT, `${clients.size} distinct valid receipts for round ${req.roundId}, ${this.opts.minClients} required`);
    }
    // Record before releasing: a crash after this line can only lose a decryption, never repeat one.
    this.decrypted.add(key);
    writeFileSync(join(this.opts.keysDir, FILES.log), JSON.stringify([...this.decrypted]), { mode: 0o600 });
    const sum = this.scheme.decryptAggregate(req.aggregate, req.length);
    // Release float32-rounded values: exact CKKS decryptions can leak key material (Li–Micciancio 2021).
    const values = new Float64Array(sum.values.length);
    for (let i = 0; i < values.length; i++) values[i] = Math.fround(sum.values[i]!);
    this.say(`decrypted round ${req.roundId} of ${req.taskId}: ${clients.size} contributors, weight ${sum.weight}`);
    return { values, weight: sum.weight };
  }

  /** Connects to the server, publishes the key and serves decryption requests until `close()`. */
  async connect(server: string, token: string, opts: { reconnectionAttempts?: number } = {}): Promise<void> {
    // Sign first: the socket connects as soon as it exists, and its 'connect' must not fire unheard.
    const publication = await this.publication();
    const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(server, {
      auth: { token },
      transports: ['websocket'],
      reconnectionAttempts: opts.reconnectionAttempts ?? Infinity,
      reconnectionDelayMax: 5000,
    });
    this.socket = socket;
    socket.on('keyholder:decrypt', (raw, ack) => {
      void (async (): Promise<DecryptAck> => {
        try {
          const req = parseMessage(decryptRequestSchema, raw, 'decryption request');
          const r = await this.decrypt(req);
          return { ok: true, values: new Uint8Array(r.values.buffer), weight: r.weight };
        } catch (e) {
          const error = toErrorBody(e);
          this.say(`refused decryption: ${error.code}: ${error.message}`);
          return { ok: false, error };
        }
      })().then((res) => typeof ack === 'function' && ack(res));
    });
    await new Promise<void>((resolve, reject) => {
      socket.on('connect', () => {
        void socket
          .timeout(30_000)
          .emitWithAck(Events.KEYHOLDER_PUBLISH, publication)
          .then((raw: unknown) => {
            const res = parseMessage(simpleAckSchema, raw, 'publish ack');
            if (res.ok) {
              this.say(`published CKKS public key (protocol v${PROTOCOL_VERSION}, N=${this.ctx.params.polyModulusDegree})`);
              resolve();
            } else {
              reject(new TesseraError(res.error.code, res.error.message));
            }
          }, reject);
      });
      socket.on('connect_error', (err: Error & { data?: { code?: string; message?: string } }) => {
        if (err.data?.code) reject(new TesseraError(err.data.code as ErrorCode, err.data.message ?? err.message));
        else if (!socket.active) reject(new TesseraError(ErrorCode.KEYHOLDER_UNAVAILABLE, `cannot reach ${server}: ${err.message}`));
      });
      socket.io.on('reconnect_failed', () => reject(new TesseraError(ErrorCode.KEYHOLDER_UNAVAILABLE, `cannot reach ${server}`)));
    });
  }

  private closed = false;

  close(): void {
    this.socket?.disconnect();
    if (this.closed) return;
    this.closed = true;
    this.release();
  }
}
