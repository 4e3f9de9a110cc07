import { randomUUID } from 'node:crypto';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import { Server } from 'socket.io';
import {
  decodeTensors,
  ErrorCode,
  Events,
  evaluateResultSchema,
  hePublicationSchema,
  flatten,
  joinRequestSchema,
  parseMessage,
  PROTOCOL_VERSION,
  submissionSchema,
  taskSpecSchema,
  TesseraError,
  toErrorBody,
  type ErrorBody,
  type TaskSpec,
  type TaskSpecInput,
} from '@tessera/protocol';
import { AdminModule, type AdminOptions } from './admin/index.js';
import { scopeAllows, TokenAuthority, type Claims, type Role } from './auth.js';
import { Store, type TaskRow } from './db.js';
import { ClientHub, type ConnectedClient, type TesseraServer, type TesseraSocket } from './hub.js';
import { createLogger, type Logger } from './log.js';
import { defineModel } from './models.js';
import { PrivacyLedger } from './privacy-ledger.js';
import { TaskRunner, type RunnerEvents } from './runner.js';
import { createStrategy } from './strategies/index.js';

export interface ServerOptions {
  /** Port to listen on; 0 picks a free one. */
  port?: number;
  host?: string;
  /** Data directory (SQLite database, keys); default `./.tessera`. */
  dataDir?: string;
  logger?: Logger;
  /** socket.io transport limit; per-task limits derived from the model are enforced per message. */
  maxHttpBufferSize?: number;
  /** Static directories to serve, by mount path (e.g. { '/join': '<client-browser>/dist' }). */
  staticRoutes?: Record<string, string>;
  /** Hooks for the demo and tests (round ended, evaluation done, task finished). */
  events?: RunnerEvents & { taskId?: string };
  /** Console, enrollment, rate limits, CORS, metrics (server/src/admin). */
  admin?: AdminOptions;
}

const HTTP_STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCode.UNAUTHORIZED]: 401,
  [ErrorCode.TOKEN_EXPIRED]: 401,
  [ErrorCode.FORBIDDEN]: 403,
  [ErrorCode.NOT_FOUND]: 404,
  [ErrorCode.UNKNOWN_TASK]: 404,
  [ErrorCode.INVALID_CONFIG]: 400,
  [ErrorCode.INVALID_MESSAGE]: 400,
  [ErrorCode.PAYLOAD_TOO_LARGE]: 413,
  [ErrorCode.INTERNAL]: 500,
};

/** The aggregation server: express + socket.io on one port, SQLite persistence, JWT auth. */
export class TesseraServerApp {
  readonly hub = new ClientHub();
  readonly runners = new Map<string, TaskRunner>();
  /** Rejections counted by code since start (persisted per rejection in the store as well). */
  readonly rejectionCounts = new Map<string, number>();
  private readonly runs = new Map<string, Promise<void>>();
  private closed = false;
  /** Console, enrollment and revocation, task lifecycle, metrics (set in start()). */
  admin!: AdminModule;

  private constructor(
    readonly http: HttpServer,
    readonly io: TesseraServer,
    readonly store: Store,
    readonly tokens: TokenAuthority,
    readonly log: Logger,
    readonly dataDir: string,
    private readonly opts: ServerOptions,
  ) {}

  /** Opens the store, resumes running tasks and listens. */
  static async start(opts: ServerOptions = {}): Promise<TesseraServerApp> {
    const dataDir = opts.dataDir ?? '.tessera';
    const log = opts.logger ?? createLogger();
    const store = new Store(dataDir);
    const tokens = await TokenAuthority.open(dataDir);
    const app = express();
    const http = createServer(app);
    const io: TesseraServer = new Server(http, { maxHttpBufferSize: opts.maxHttpBufferSize ?? 64 * 1024 * 1024, serveClient: false });
    const server = new TesseraServerApp(http, io, store, tokens, log, dataDir, opts);
    server.admin = await AdminModule.create(server, opts.admin);
    server.routes(app);
    server.sockets();
    server.resumeTasks();
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
    });
    log.info(`listening on ${server.url}`, { dataDir });
    return server;
  }

  get port(): number {
    return (this.http.address() as AddressInfo).port;
  }

  get url(): string {
    const host = this.opts.host && this.opts.host !== '0.0.0.0' ? this.opts.host : '127.0.0.1';
    return `http://${host.includes(':') ? `[${host}]` : host}:${this.port}`;
  }

  /** Validates a task spec, builds its model and starts orchestrating it. Returns its id. */
  async createTask(input: TaskSpecInput | unknown, actor = 'system', opts: { start?: boolean; ip?: string | null } = {}): Promise<string> {
    const r = taskSpecSchema.safeParse(input);
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new TesseraError(ErrorCode.INVALID_CONFIG, `invalid task${issue?.path.length ? ` at ${issue.path.join('.')}` : ''}: ${issue?.message}`);
    }
    const spec: TaskSpec = r.data;
    createStrategy(spec.strategy.name, spec.strategy.options); // fails early on an unknown strategy
    const model = await defineModel(spec.model);
    const id = `task-${randomUUID().slice(0, 8)}`;
    const flat = flatten(model.weights);
    const manifest = model.weights.map((w) => ({ name: w.name, shape: w.shape, dtype: 'float32' as const }));
    this.store.createTask({ id, name: spec.name, spec, topology: model.topology }, { taskId: id, version: 0, roundId: null, manifest, data: new Uint8Array(flat.buffer) });
    this.store.audit(actor, 'task.create', id, { name: spec.name, rounds: spec.rounds }, opts.ip);
    this.log.info(`task ${id} created`, { name: spec.name, parameters: flat.length, rounds: spec.rounds });
    if (opts.start === false) this.store.setTaskStatus(id, 'paused', 'created, not started');
    else this.launch(this.store.getTask(id)!);
    this.admin?.live.tasksChanged(id, opts.start === false ? 'paused' : 'running');
    return id;
  }

  private resumeTasks(): void {
    for (const t of this.store.listTasks()) {
      if (t.status !== 'running') continue;
      const n = this.store.markInterrupted(t.id);
      this.log.info(`resuming task ${t.id} from model v${t.modelVersion}`, { completedRounds: t.completedRounds, interruptedRounds: n });
      this.launch(t);
    }
  }

  /** Starts a runner for a task from its current checkpoint (also how the console resumes a paused task). */
  launch(t: TaskRow): void {
    const spec = taskSpecSchema.parse(JSON.parse(t.spec));
    const ckpt = this.store.getCheckpoint(t.id, t.modelVersion);
    if (!ckpt) throw new Error(`task ${t.id}: checkpoint v${t.modelVersion} missing`);
    const weights = flatten(decodeTensors({ manifest: ckpt.manifest, data: ckpt.data }));
    const ev = this.opts.events;
    const events = this.admin.runnerEvents(t.id, ev && (ev.taskId === undefined || ev.taskId === t.id) ? ev : {});
    const runner = new TaskRunner(
      t.id,
      spec,
      this.store.getTopology(t.id),
      ckpt.manifest,
      { version: t.modelVersion, weights: Float32Array.from(weights), completedRounds: t.completedRounds },
      createStrategy(spec.strategy.name, spec.strategy.options),
      this.store,
      this.hub,
      this.log.child({ task: t.id }),
      events,
    );
    this.runners.set(t.id, runner);
    // Clients already connected to this task (e.g. after a restart) get their assignment.
    for (const c of this.hub.forTask(t.id)) runner.assign(c);
    const p = runner
      .restoreHe()
      .then(() => runner.run())
      .catch((e: unknown) => {
      this.log.error(`task ${t.id} stopped on an internal error: ${(e as Error).stack ?? String(e)}`);
      this.store.setTaskStatus(t.id, 'failed', `internal error: ${(e as Error).message}`);
    });
    this.runs.set(t.id, p);
  }

  /** Resolves when the task's runner has finished (done, failed or stopped). */
  async waitForTask(taskId: string): Promise<void> {
    await this.runs.get(taskId);
  }

  private countRejection(ctx: { taskId: string | null; roundId: number | null; clientId: string | null }, err: ErrorBody): void {
    this.rejectionCounts.set(err.code, (this.rejectionCounts.get(err.code) ?? 0) + 1);
    try {
      this.store.recordRejection({ ...ctx, code: err.code, message: err.message });
    } catch {
      /* the store may be closing; the in-memory count stands */
    }
    this.log.warn(`rejected ${err.code}: ${err.message}`, { client: ctx.clientId ?? '?', round: ctx.roundId ?? '-' });
  }

  private sockets(): void {
    this.io.use((socket, next) => {
      const token: unknown = (socket.handshake.auth as Record<string, unknown> | undefined)?.token;
      this.tokens
        .verify(token, ['client', 'keyholder'] satisfies Role[])
        .then((claims) => {
          socket.data.claims = claims;
          next();
        })
        .catch((e: unknown) => {
          const body = toErrorBody(e);
          this.countRejection({ taskId: null, roundId: null, clientId: null }, body);
          next(Object.assign(new Error(body.message), { data: body }));
        });
    });
    this.io.on('connection', (socket) => this.onConnection(socket));
  }

  private onConnection(socket: TesseraSocket): void {
    const reply = <T extends object>(ack: unknown, ctx: { roundId: number | null }, fn: () => T | Promise<T>): void => {
      const send = typeof ack === 'function' ? (ack as (r: unknown) => void) : () => undefined;
      Promise.resolve()
        .then(fn)
        .then((r) => send({ ok: true, ...r }))
        .catch((e: unknown) => {
          if (!(e instanceof TesseraError)) this.log.error(`handler error: ${(e as Error).stack ?? String(e)}`);
          const error = toErrorBody(e);
          this.countRejection({ taskId: socket.data.taskId ?? null, roundId: ctx.roundId, clientId: socket.data.clientId ?? socket.data.claims.sub }, error);
          send({ ok: false, error });
        });
    };
    const roundOf = (raw: unknown): number | null => {
      const r = (raw as { roundId?: unknown } | null)?.roundId;
      return typeof r === 'number' ? r : null;
    };

    socket.on(Events.JOIN, (raw, ack) => reply(ack, { roundId: null }, () => this.join(socket, raw)));
    socket.on(Events.SUBMIT, (raw, ack) =>
      reply(ack, { roundId: roundOf(raw) }, async () => {
        const { client, runner } = this.joined(socket);
        const roundId = roundOf(raw);
        try {
          await runner.submit(client, parseMessage(submissionSchema, raw, 'submission'));
        } catch (e) {
          // Per-round tally (the per-code count happens in reply); a no-op for unknown rounds.
          if (roundId !== null) this.store.countRoundSubmission(client.taskId, roundId, false);
          throw e;
        }
        if (roundId !== null) this.store.countRoundSubmission(client.taskId, roundId, true);
        return {};
      }),
    );
    socket.on(Events.EVALUATE_RESULT, (raw, ack) =>
      reply(ack, { roundId: roundOf(raw) }, () => {
        const { client, runner } = this.joined(socket);
        runner.evaluateResult(client, parseMessage(evaluateResultSchema, raw, 'evaluation result'));
        return {};
      }),
    );
    socket.on(Events.KEYHOLDER_PUBLISH, (raw, ack) =>
      reply(ack, { roundId: null }, async () => {
        const claims = socket.data.claims;
        if (claims.role !== 'keyholder') throw new TesseraError(ErrorCode.FORBIDDEN, `role ${claims.role} cannot publish key holder keys`);
        const pub = parseMessage(hePublicationSchema, raw, 'key holder publication');
        const runners = [...this.runners.values()].filter((r) => r.spec.he && scopeAllows(claims, r.taskId) && r.state !== 'done' && r.state !== 'failed');
        if (runners.length === 0) throw new TesseraError(ErrorCode.UNKNOWN_TASK, 'no running encrypted task this key holder may serve');
        for (const r of runners) await r.setKeyholder(socket, pub);
        socket.data.taskId = runners[0]!.taskId;
        this.store.audit(claims.sub, 'keyholder.publish', runners.map((r) => r.taskId).join(','), { params: pub.params });
        return {};
      }),
    );
    socket.on('disconnect', (reason) => {
      if (socket.data.claims.role === 'keyholder') for (const r of this.runners.values()) r.keyholderLeft(socket);
      const id = socket.data.clientId;
      if (!id) return;
      const c = this.hub.remove(id, socket.id);
      if (c) {
        this.log.info(`client ${id} disconnected`, { reason });
        this.runners.get(c.taskId)?.clientLeft(id);
      }
    });
  }

  private joined(socket: TesseraSocket): { client: ConnectedClient; runner: TaskRunner } {
    const id = socket.data.clientId;
    const client = id ? this.hub.get(id) : undefined;
    if (!client || client.socket.id !== socket.id) throw new TesseraError(ErrorCode.INVALID_MESSAGE, 'join before submitting');
    const runner = this.runners.get(client.taskId);
    if (!runner) throw new TesseraError(ErrorCode.UNKNOWN_TASK, `task ${client.taskId} is not running`);
    return { client, runner };
  }

  private join(socket: TesseraSocket, raw: unknown): { taskId: string; clientId: string } {
    const v = (raw as { protocolVersion?: unknown } | null)?.protocolVersion;
    if (typeof v === 'number' && v !== PROTOCOL_VERSION) {
      throw new TesseraError(ErrorCode.PROTOCOL_VERSION, `server speaks protocol v${PROTOCOL_VERSION}, client v${v}`);
    }
    const req = parseMessage(joinRequestSchema, raw, 'join request');
    const claims: Claims = socket.data.claims;
    if (claims.role !== 'client') throw new TesseraError(ErrorCode.FORBIDDEN, `role ${claims.role} cannot join as a training client`);
    if (req.clientId !== claims.sub) throw new TesseraError(ErrorCode.FORBIDDEN, `client id ${req.clientId} does not match the token's subject`);
    let taskId = req.taskId;
    if (taskId === undefined) {
      taskId = [...this.runners.values()].find((r) => !['done', 'failed', 'stopped', 'aborted'].includes(r.state) && scopeAllows(claims, r.taskId))?.taskId;
      if (!taskId) throw new TesseraError(ErrorCode.UNKNOWN_TASK, 'no running task this token may join');
    }
    const runner = this.runners.get(taskId);
    if (!runner) throw new TesseraError(ErrorCode.UNKNOWN_TASK, `no running task ${taskId}`);
    if (!scopeAllows(claims, taskId)) throw new TesseraError(ErrorCode.FORBIDDEN, `token is not scoped to task ${taskId}`);
    const client: ConnectedClient = {
      clientId: req.clientId,
      taskId,
      platform: req.platform,
      backend: req.backend,
      numTrainExamples: req.numTrainExamples,
      numTestExamples: req.numTestExamples,
      ...(req.receiptKey ? { receiptKey: req.receiptKey } : {}),
      socket,
      joinedAt: Date.now(),
    };
    const prev = this.hub.add(client);
    if (prev) prev.socket.disconnect(true);
    socket.data.clientId = req.clientId;
    socket.data.taskId = taskId;
    this.store.upsertClient({ id: req.clientId, platform: req.platform, backend: req.backend, numTrain: req.numTrainExamples, numTest: req.numTestExamples });
    this.log.info(`client ${req.clientId} joined ${taskId}`, { platform: req.platform, backend: req.backend, train: req.numTrainExamples, test: req.numTestExamples });
    // The assignment goes out before anything else can reach this socket (socket.io keeps order):
    // a round:start must never overtake the task it belongs to.
    runner.assign(client);
    return { taskId, clientId: req.clientId };
  }

  private routes(app: express.Express): void {
    app.disable('x-powered-by');
    this.admin.mountPublic(app);
    app.use(express.json({ limit: '32mb' }));
    app.get('/healthz', (_req, res) => {
      res.json({ ok: true, protocolVersion: PROTOCOL_VERSION, tasks: this.runners.size, clients: this.hub.all().length });
    });
    const admin = (req: Request, _res: Response, next: NextFunction) => {
      this.admin
        .authenticate(req)
        .then((claims) => {
          res_locals(req).claims = claims;
          next();
        })
        .catch(next);
    };
    const task = (req: Request): TaskRow => {
      const t = this.store.getTask(String(req.params.id));
      if (!t) throw new TesseraError(ErrorCode.NOT_FOUND, `no task ${String(req.params.id)}`);
      return t;
    };
    const api = express.Router();
    api.use(admin);
    this.admin.mountAdmin(api);
    api.get('/tasks', (_req, res) => {
      res.json(this.store.listTasks().map((t) => ({ ...summary(t), runner: this.runners.get(t.id)?.status() })));
    });
    api.post('/tasks', (req, res, next) => {
      this.createTask(req.body, res_locals(req).claims?.sub ?? 'admin', { start: req.query.start !== 'false', ip: req.ip ?? null })
        .then((id) => res.status(201).json({ id }))
        .catch(next);
    });
    api.get('/tasks/:id', (req, res) => {
      const t = task(req);
      res.json({ ...summary(t), spec: JSON.parse(t.spec) as unknown, runner: this.runners.get(t.id)?.status(), rejections: this.store.rejectionCounts(t.id) });
    });
    api.get('/tasks/:id/rounds', (req, res) => {
      res.json(this.store.listRounds(task(req).id));
    });
    api.get('/tasks/:id/privacy', (req, res) => {
      const t = task(req);
      const spec = taskSpecSchema.parse(JSON.parse(t.spec));
      const ledger =
        this.runners.get(t.id)?.privacy ??
        (spec.privacy && spec.privacy.mode !== 'off' ? new PrivacyLedger(this.store, t.id, spec.privacy, spec.clientsPerRound, spec.minClients) : undefined);
      const stoppedByBudget = t.status === 'stopped' && t.reason?.startsWith(ErrorCode.PRIVACY_BUDGET) ? { code: ErrorCode.PRIVACY_BUDGET, reason: t.reason } : null;
      res.json(ledger ? { taskId: t.id, status: t.status, ...ledger.report(), stopped: ledger.stopped ?? stoppedByBudget } : { taskId: t.id, status: t.status, mode: 'off' });
    });
    api.get('/tasks/:id/checkpoints', (req, res) => {
      res.json(this.store.listCheckpoints(task(req).id));
    });
    api.get('/clients', (_req, res) => {
      res.json(this.store.listClients());
    });
    api.get('/rejections', (_req, res) => {
      res.json(this.store.rejectionCounts());
    });
    api.get('/audit', (_req, res) => {
      res.json(this.store.listAudit());
    });
    app.use('/api', api);
    for (const [mount, dir] of Object.entries(this.opts.staticRoutes ?? {})) {
      app.use(mount, express.static(dir, { index: 'index.html', fallthrough: true }));
    }
    app.use((_req, _res, next) => next(new TesseraError(ErrorCode.NOT_FOUND, 'no such endpoint')));
    app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
      let body = toErrorBody(err);
      const e = err as { type?: string; status?: number };
      if (!(err instanceof TesseraError) && e?.type === 'entity.parse.failed') body = { code: ErrorCode.INVALID_MESSAGE, message: 'request body is not valid JSON' };
      if (!(err instanceof TesseraError) && e?.type === 'entity.too.large') body = { code: ErrorCode.PAYLOAD_TOO_LARGE, message: 'request body too large' };
      if (body.code === ErrorCode.INTERNAL) this.log.error(`REST error: ${(err as Error)?.stack ?? String(err)}`);
      res.status(HTTP_STATUS[body.code] ?? 400).json({ error: body });
    });
  }

  /** Stops the runners, disconnects everyone and closes the store. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.admin?.close();
    for (const r of this.runners.values()) r.stop();
    await Promise.allSettled([...this.runs.values()]);
    await new Promise<void>((resolve) => this.io.close(() => resolve()));
    this.http.closeAllConnections?.();
    this.store.close();
  }
}

const locals = new WeakMap<Request, { claims?: Claims }>();
function res_locals(req: Request): { claims?: Claims } {
  let l = locals.get(req);
  if (!l) locals.set(req, (l = {}));
  return l;
}

function summary(t: TaskRow) {
  return { id: t.id, name: t.name, status: t.status, modelVersion: t.modelVersion, completedRounds: t.completedRounds, reason: t.reason, createdAt: t.createdAt };
}
