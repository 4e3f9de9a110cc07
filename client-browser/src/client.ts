import { io, type Socket } from 'socket.io-client';
import {
  subjectOf,
  ClientSession,
  ErrorCode,
  TesseraError,
  type ClientSessionOptions,
  type ClientToServerEvents,
  type ClientTransport,
  type ServerToClientEvents,
  type SessionEvent,
  type TaskDone,
  type Trainer,
  type UpdatePipeline,
} from '@tessera/protocol';

export interface TesseraBrowserClientOptions {
  /** Server origin; default: the page's own (`location.origin`). */
  server?: string;
  /** Session JWT (role client); its subject is the client id. */
  token: string;
  trainer: Trainer;
  /** Why the trainer's backend was chosen; sent at join and shown to operators. */
  backendReason?: string;
  taskId?: string;
  pipeline?: UpdatePipeline;
  onEvent?: (e: SessionEvent) => void;
  /** Connection state changes, for the page (a tab may sit through server restarts). */
  onConnection?: (state: 'connected' | 'disconnected' | 'reconnecting', detail?: string) => void;
  /** Connection attempts before giving up; default: keep trying while the tab is open. */
  reconnectionAttempts?: number;
  /** Timeout for acks from the server. */
  ackTimeoutMs?: number;
  /** Further `ClientSession` options (e.g. an encrypted task's key holder key), passed through unchanged. */
  session?: Omit<Partial<ClientSessionOptions>, 'clientId' | 'platform' | 'trainer' | 'transport'>;
}

export { subjectOf };

/**
 * Browser client SDK: connects with socket.io and runs the platform-free `ClientSession` from
 * `@tessera/protocol` (platform 'browser') until the task is done. Every (re)connection joins
 * again, so a reloaded or reconnected tab simply rejoins; a closed tab is a dropout.
 * @example
 * const { backend, reason } = await selectBrowserBackend();
 * const trainer = new BrowserTrainer(backend, data.train, data.test);
 * const done = await new TesseraBrowserClient({ token, trainer, backendReason: reason }).run();
 */
export class TesseraBrowserClient {
  readonly clientId: string;
  session: ClientSession | undefined;
  private socket: Socket<ServerToClientEvents, ClientToServerEvents> | undefined;

  constructor(private readonly opts: TesseraBrowserClientOptions) {
    this.clientId = subjectOf(opts.token);
  }

  /** Bytes of model updates sent so far. */
  get bytesUp(): number {
    return this.session?.bytesUp ?? 0;
  }

  /** Bytes of models received so far. */
  get bytesDown(): number {
    return this.session?.bytesDown ?? 0;
  }

  /** Runs until the task is done; rejects with a TesseraError when the server refuses the token or stays unreachable. */
  async run(): Promise<TaskDone> {
    const o = this.opts;
    const server = o.server ?? globalThis.location.origin;
    const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(server, {
      auth: { token: o.token.trim() },
      transports: ['websocket', 'polling'],
      tryAllTransports: true,
      reconnection: true,
      reconnectionAttempts: o.reconnectionAttempts ?? Infinity,
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
      ...o.session,
      clientId: this.clientId,
      platform: 'browser',
      trainer: o.trainer,
      transport,
      ...(o.pipeline ? { pipeline: o.pipeline } : {}),
      ...(o.taskId ? { taskId: o.taskId } : {}),
      ...(o.backendReason ? { backendReason: o.backendReason } : {}),
      ...(o.onEvent ? { onEvent: o.onEvent } : {}),
    });
    this.session = session;
    socket.on('connect', () => o.onConnection?.('connected'));
    socket.on('disconnect', (why) => o.onConnection?.('disconnected', why));
    socket.io.on('reconnect_attempt', (n) => o.onConnection?.('reconnecting', `attempt ${n}`));
    const failure = new Promise<never>((_, reject) => {
      socket.on('connect_error', (err: Error & { data?: { code?: string; message?: string } }) => {
        // Middleware rejections (bad or expired token) are final; transport errors are retried.
        if (err.data?.code) reject(new TesseraError(err.data.code as ErrorCode, err.data.message ?? err.message));
      });
      socket.io.on('reconnect_failed', () => reject(new TesseraError(ErrorCode.INTERNAL, `server ${server} unreachable`)));
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
