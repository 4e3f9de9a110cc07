import { io, type Socket } from 'socket.io-client';
import {
  subjectOf,
  ClientSession,
  ErrorCode,
  TesseraError,
  type ClientToServerEvents,
  type ClientTransport,
  type Ed25519Jwk,
  type ServerToClientEvents,
  type SessionEvent,
  type TaskDone,
  type UpdatePipeline,
} from '@tessera/protocol';
import type { Trainer } from '@tessera/protocol';

export interface TesseraClientOptions {
  /** Server URL, e.g. http://127.0.0.1:8080 */
  server: string;
  /** Session JWT (role client; its subject is the client id), or a provider asked on every (re)connection (refreshing device credentials). */
  token: string | (() => Promise<string>);
  /** Required with a token provider: the id the provider's tokens are issued to. */
  clientId?: string;
  trainer: Trainer;
  backendReason?: string;
  taskId?: string;
  pipeline?: UpdatePipeline;
  onEvent?: (e: SessionEvent) => void;
  /** Connection attempts before giving up (exponential backoff, capped at 5 s). */
  reconnectionAttempts?: number;
  /** Timeout for acks from the server. */
  ackTimeoutMs?: number;
  /** The key holder's public signing key to trust (encrypted tasks). */
  keyholderKey?: Ed25519Jwk;
}

export { subjectOf };

/**
 * Node client SDK: connects over socket.io, runs the platform-free ClientSession until the task
 * is done. Reconnects with backoff (a restarted server is rejoined); auth and protocol errors are
 * fatal and reported with their code.
 * @example
 * const done = await new TesseraClient({ server, token, trainer }).run();
 */
export class TesseraClient {
  readonly clientId: string;
  private socket: Socket<ServerToClientEvents, ClientToServerEvents> | undefined;
  session: ClientSession | undefined;

  constructor(private readonly opts: TesseraClientOptions) {
    if (typeof opts.token === 'string') this.clientId = subjectOf(opts.token);
    else if (opts.clientId) this.clientId = opts.clientId;
    else throw new TesseraError(ErrorCode.INVALID_CONFIG, 'a token provider needs the clientId');
  }

  /** Runs until the task is done; rejects with a TesseraError on fatal errors or when the server stays unreachable. */
  async run(): Promise<TaskDone> {
    const o = this.opts;
    const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(o.server, {
      // Asked on every (re)connection, so a refreshed session token is used after an outage.
      auth: (cb) => {
        const t = o.token;
        if (typeof t === 'string') cb({ token: t });
        else t().then((token) => cb({ token }), (e: unknown) => failWith(e));
      },
      transports: ['websocket'],
      reconnection: true,
      reconnectionAttempts: o.reconnectionAttempts ?? 12,
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
      timeout: 10_000,
    });
    this.socket = socket;
    const ackTimeout = o.ackTimeoutMs ?? 60_000;
    const transport: ClientTransport = {
      emitWithAck: (event, payload) => (socket.timeout(ackTimeout).emitWithAck as (e: string, p: unknown) => Promise<never>)(event, payload),
      on: (event, handler) => {
        socket.on(event, handler as never);
      },
      onConnect: (h) => {
        socket.on('connect', h);
      },
    };
    const session = new ClientSession({
      clientId: this.clientId,
      platform: 'node',
      trainer: o.trainer,
      transport,
      ...(o.pipeline ? { pipeline: o.pipeline } : {}),
      ...(o.taskId ? { taskId: o.taskId } : {}),
      ...(o.backendReason ? { backendReason: o.backendReason } : {}),
      ...(o.onEvent ? { onEvent: o.onEvent } : {}),
      ...(o.keyholderKey ? { keyholderKey: o.keyholderKey } : {}),
    });
    this.session = session;
    let lastError: { code: ErrorCode; message: string } | undefined;
    let failWith: (e: unknown) => void = () => undefined;
    const failure = new Promise<never>((_, reject) => {
      failWith = (e) => {
        socket.disconnect();
        reject(e instanceof TesseraError ? e : new TesseraError(ErrorCode.UNAUTHORIZED, String(e)));
      };
      socket.on('connect_error', (err: Error & { data?: { code?: string; message?: string } }) => {
        // Middleware rejections (bad token) are final; transport errors are retried by the manager.
        if (err.data?.code) reject(new TesseraError(err.data.code as ErrorCode, err.data.message ?? err.message));
      });
      socket.on('tessera:error', (e) => (lastError = e));
      socket.on('disconnect', (reason) => {
        // The server closed us on purpose (token revoked, replaced by a newer connection): not retried.
        if (reason === 'io server disconnect') {
          reject(new TesseraError(lastError?.code ?? ErrorCode.UNAUTHORIZED, lastError?.message ?? 'disconnected by the server'));
        }
      });
      socket.io.on('reconnect_failed', () => reject(new TesseraError(ErrorCode.INTERNAL, `server ${o.server} unreachable (gave up after ${o.reconnectionAttempts ?? 12} attempts)`)));
    });
    failure.catch(() => undefined);
    session.start();
    try {
      return await Promise.race([session.done, failure]);
    } finally {
      socket.disconnect();
    }
  }

  /** Closes the connection (a dropout from the server's point of view). */
  close(): void {
    this.socket?.disconnect();
  }
}
