import { decodeTensors, encodeTensors, flatten, type NamedTensor, type TensorSpec } from './codec.js';
import { ErrorCode, TesseraError, type ErrorBody } from './errors.js';
import type { ClientToServerEvents, ServerToClientEvents } from './events.js';
import { Events } from './events.js';
import {
  joinChunks,
  evaluateRequestSchema,
  joinAckSchema,
  parseMessage,
  PROTOCOL_VERSION,
  roundEndSchema,
  roundStartSchema,
  simpleAckSchema,
  taskAssignmentSchema,
  taskDoneSchema,
  type RoundEnd,
  type RoundStart,
  type TaskAssignment,
  type TaskDone,
} from './messages.js';
import type { TrainConfig } from './task.js';
import { addGaussianNoiseInPlace, clipInPlace } from './privacy/mechanism.js';
import { generateSigningKey, HeEncryptor, signReceipt, type SigningKey } from './he.js';
import type { LoadSealOptions } from './crypto/seal-runtime.js';
import type { Ed25519Jwk } from './messages.js';

/** Progress of local training, reported once per epoch (and optionally per batch). */
export interface TrainProgress {
  epoch: number;
  epochs: number;
  loss: number;
  accuracy?: number;
  samplesPerSecond?: number;
}

export interface TrainResult {
  numExamples: number;
  metrics: Record<string, number>;
}

export interface EvalResult {
  numExamples: number;
  loss: number;
  accuracy: number;
}

/** Local training, implemented per platform (tfjs on Node or in a browser tab). */
export interface Trainer {
  readonly backend: string;
  readonly numTrainExamples: number;
  readonly numTestExamples: number;
  /** Builds the task's model from a tfjs Layers topology. */
  loadModel(topology: string, train: TrainConfig): Promise<void>;
  setWeights(weights: readonly NamedTensor[]): void;
  getWeights(): NamedTensor[];
  train(config: TrainConfig, onProgress?: (p: TrainProgress) => void): Promise<TrainResult>;
  evaluate(): Promise<EvalResult>;
}

type AckOf<E extends keyof ClientToServerEvents> = Parameters<Parameters<ClientToServerEvents[E]>[1]>[0];

/** The slice of a socket.io client socket the session needs; tests and browsers supply their own. */
export interface ClientTransport {
  emitWithAck<E extends keyof ClientToServerEvents>(event: E, payload: Parameters<ClientToServerEvents[E]>[0]): Promise<AckOf<E>>;
  on<E extends keyof ServerToClientEvents>(event: E, handler: ServerToClientEvents[E]): void;
  /** Called on every (re)connection; the session joins each time. */
  onConnect(handler: () => void): void;
}

/** Turns the clipped local update into what is submitted (plain today; DP and HE plug in here). */
export interface UpdatePipeline {
  prepare(delta: NamedTensor[], ctx: { round: RoundStart; numExamples: number }): Promise<Parameters<ClientToServerEvents['submit']>[0]['update']>;
}

export const plainPipeline: UpdatePipeline = {
  async prepare(delta) {
    return { kind: 'plain', tensors: encodeTensors(delta) };
  },
};

export type SessionEvent =
  | { type: 'joined'; taskId: string }
  | { type: 'task'; taskId: string; name: string; modelVersion: number; totalRounds: number }
  | { type: 'round-start'; roundId: number; modelVersion: number; deadline: number }
  | { type: 'train-progress'; roundId: number; progress: TrainProgress }
  | { type: 'submitted'; roundId: number; numExamples: number; bytes: number; metrics: Record<string, number> }
  | { type: 'rejected'; roundId: number; error: ErrorBody }
  | { type: 'round-end'; end: RoundEnd }
  | { type: 'evaluated'; roundId: number; loss: number; accuracy: number; numExamples: number }
  | { type: 'done'; done: TaskDone }
  | { type: 'error'; error: ErrorBody };

export interface ClientSessionOptions {
  clientId: string;
  platform: 'node' | 'browser';
  trainer: Trainer;
  transport: ClientTransport;
  pipeline?: UpdatePipeline;
  taskId?: string;
  backendReason?: string;
  onEvent?: (e: SessionEvent) => void;
  /** The key holder's signing key this client trusts (HE tasks): publications must verify against it. */
  keyholderKey?: Ed25519Jwk;
  /** How to load node-seal's WebAssembly (browsers pass the served wasm). */
  sealOptions?: LoadSealOptions;
  /** Receipt-signing key; generated per session when absent. */
  receiptKey?: SigningKey;
  /** Overridable for protocol tests only. */
  protocolVersion?: number;
}

function errorBodyOf(err: unknown): ErrorBody {
  return err instanceof TesseraError ? { code: err.code, message: err.message } : { code: ErrorCode.INTERNAL, message: String(err) };
}

/**
 * The client side of a round, free of any platform API: join, receive the task, train on
 * `round:start`, submit Δ = w_local − w_global, evaluate on request. Node and browser clients
 * differ only in the Trainer and Transport they pass in.
 */
export class ClientSession {
  readonly done: Promise<TaskDone>;
  private resolveDone!: (d: TaskDone) => void;
  private rejectDone!: (e: Error) => void;
  private task: TaskAssignment | undefined;
  private loadedTopology: string | undefined;
  private manifest: TensorSpec[] = [];
  private queue: Promise<void> = Promise.resolve();
  private latestRound = 0;
  private finished = false;
  private receiptKey: SigningKey | undefined;
  private he: { publication: unknown; encryptor?: HeEncryptor; error?: TesseraError } | undefined;
  bytesUp = 0;
  bytesDown = 0;

  constructor(private readonly opts: ClientSessionOptions) {
    this.done = new Promise<TaskDone>((res, rej) => {
      this.resolveDone = res;
      this.rejectDone = rej;
    });
    // A caller that only awaits later must not trigger an unhandled rejection warning first.
    this.done.catch(() => undefined);
  }

  /** Registers handlers; joining happens on every connect of the transport. */
  start(): void {
    const t = this.opts.transport;
    t.onConnect(() => void this.join().catch((err: unknown) => this.emit({ type: 'error', error: errorBodyOf(err) })));
    t.on(Events.TASK, (msg) => this.enqueue(() => this.onTask(msg)));
    t.on(Events.ROUND_START, (msg) => {
      // Only a valid announcement may move the latest round (a malformed one must not make us skip rounds).
      const parsed = roundStartSchema.safeParse(msg);
      if (parsed.success) this.latestRound = Math.max(this.latestRound, parsed.data.roundId);
      this.enqueue(() => this.onRoundStart(msg));
    });
    t.on(Events.ROUND_END, (msg) => this.enqueue(async () => this.onRoundEnd(msg)));
    t.on(Events.EVALUATE, (msg) => this.enqueue(() => this.onEvaluate(msg)));
    t.on(Events.TASK_DONE, (msg) => this.enqueue(async () => this.onTaskDone(msg)));
    t.on(Events.ERROR, (err) => this.emit({ type: 'error', error: err }));
  }

  private emit(e: SessionEvent): void {
    this.opts.onEvent?.(e);
  }

  private enqueue(fn: () => Promise<void>): void {
    this.queue = this.queue.then(fn).catch((err: unknown) => this.emit({ type: 'error', error: errorBodyOf(err) }));
  }

  private fail(err: TesseraError): void {
    if (this.finished) return;
    this.finished = true;
    this.rejectDone(err);
  }

  private async join(): Promise<void> {
    const { trainer } = this.opts;
    this.receiptKey ??= this.opts.receiptKey ?? (await generateSigningKey());
    const ack = await this.opts.transport.emitWithAck(Events.JOIN, {
      receiptKey: this.receiptKey.jwk,
      protocolVersion: this.opts.protocolVersion ?? PROTOCOL_VERSION,
      clientId: this.opts.clientId,
      platform: this.opts.platform,
      backend: trainer.backend,
      backendReason: this.opts.backendReason,
      numTrainExamples: trainer.numTrainExamples,
      numTestExamples: trainer.numTestExamples,
      taskId: this.opts.taskId,
    });
    const res = parseMessage(joinAckSchema, ack, 'join ack');
    if (!res.ok) {
      this.emit({ type: 'error', error: res.error });
      // Version mismatches and auth failures will not heal by retrying.
      this.fail(new TesseraError(res.error.code, res.error.message));
      return;
    }
    this.emit({ type: 'joined', taskId: res.taskId });
  }

  private async onTask(raw: unknown): Promise<void> {
    const msg = parseMessage(taskAssignmentSchema, raw, 'task assignment');
    this.bytesDown += msg.weights.data.byteLength;
    this.task = msg;
    this.manifest = msg.weights.manifest;
    if (this.loadedTopology !== msg.topology) {
      await this.opts.trainer.loadModel(msg.topology, msg.train);
      this.loadedTopology = msg.topology;
    }
    this.opts.trainer.setWeights(decodeTensors(msg.weights, { requireFinite: true }));
    if (msg.he && this.he?.publication !== msg.he.signature) {
      this.he?.encryptor?.dispose();
      this.he = { publication: msg.he.signature };
      try {
        this.he.encryptor = await HeEncryptor.create(msg.he, this.opts.keyholderKey, this.opts.sealOptions);
      } catch (e) {
        this.he.error = e instanceof TesseraError ? e : new TesseraError(ErrorCode.KEY, `cannot use the key holder's key: ${(e as Error).message}`);
        this.emit({ type: 'error', error: { code: this.he.error.code, message: `refusing to encrypt: ${this.he.error.message}` } });
      }
    }
    this.emit({ type: 'task', taskId: msg.taskId, name: msg.name, modelVersion: msg.modelVersion, totalRounds: msg.totalRounds });
  }

  private async onRoundStart(raw: unknown): Promise<void> {
    const round = parseMessage(roundStartSchema, raw, 'round start');
    if (!this.task || round.taskId !== this.task.taskId) return;
    // A newer round was announced while we were busy: this one is already over for us.
    if (round.roundId < this.latestRound) return;
    this.bytesDown += round.weights.data.byteLength;
    if (this.task.he && !this.he?.encryptor) {
      // An encrypted task whose key holder key does not verify: never send the update in any form.
      this.emit({ type: 'rejected', roundId: round.roundId, error: { code: ErrorCode.KEY, message: `not taking part: ${this.he?.error?.message ?? 'no verified key holder key'}` } });
      return;
    }
    this.emit({ type: 'round-start', roundId: round.roundId, modelVersion: round.modelVersion, deadline: round.deadline });
    const global = decodeTensors(round.weights, { expected: this.manifest, requireFinite: true });
    const trainer = this.opts.trainer;
    trainer.setWeights(global);
    const result = await trainer.train(round.train, (progress) => this.emit({ type: 'train-progress', roundId: round.roundId, progress }));
    const local = trainer.getWeights();
    const delta = local.map((t, i) => {
      const g = global[i]!.values;
      const d = new Float32Array(t.values.length);
      for (let j = 0; j < d.length; j++) d[j] = t.values[j]! - g[j]!;
      return { name: t.name, shape: t.shape, values: d };
    });
    // Privacy stage before anything leaves the device: clip the whole update, then add this client's noise.
    let dp: { belowClip: boolean } | undefined;
    if (round.privacy) {
      const values = delta.map((t) => t.values);
      const clip = clipInPlace(values, round.privacy.clipNorm);
      if (round.privacy.noiseStd > 0) addGaussianNoiseInPlace(values, round.privacy.noiseStd);
      dp = { belowClip: !clip.clipped };
    }
    let update: Parameters<ClientToServerEvents['submit']>[0]['update'];
    let numExamples = result.numExamples;
    let metrics = result.metrics;
    const encryptor = this.he?.encryptor;
    if (this.task.he && encryptor) {
      // Weighting without revealing counts: the count multiplies the update inside the ciphertext
      // and travels in a spare slot; with DP every client weighs 1 (bounded sensitivity).
      const flat = flatten(delta);
      const t0 = performance.now();
      const ciphertexts = encryptor.encrypt(flat, round.privacy ? 1 : result.numExamples);
      const micros = ((performance.now() - t0) * 1000) / flat.length;
      const receipt = await signReceipt(this.receiptKey!, { taskId: round.taskId, roundId: round.roundId, clientId: this.opts.clientId }, ciphertexts);
      update = { kind: 'ckks', ciphertexts: joinChunks(ciphertexts), receipt };
      numExamples = 1;
      metrics = { encryptMicrosPerParam: micros, ...(result.metrics.trainSeconds !== undefined ? { trainSeconds: result.metrics.trainSeconds } : {}) };
    } else {
      update = await (this.opts.pipeline ?? plainPipeline).prepare(delta, { round, numExamples: result.numExamples });
    }
    const bytes = update.kind === 'plain' ? update.tensors.data.byteLength : update.ciphertexts.data.byteLength;
    const ack = await this.opts.transport.emitWithAck(Events.SUBMIT, {
      taskId: round.taskId,
      roundId: round.roundId,
      baseModelVersion: round.modelVersion,
      numExamples,
      metrics,
      update,
      ...(dp ? { dp } : {}),
    });
    const res = parseMessage(simpleAckSchema, ack, 'submit ack');
    if (res.ok) {
      this.bytesUp += bytes;
      this.emit({ type: 'submitted', roundId: round.roundId, numExamples: result.numExamples, bytes, metrics: result.metrics });
    } else {
      this.emit({ type: 'rejected', roundId: round.roundId, error: res.error });
    }
  }

  private onRoundEnd(raw: unknown): void {
    const end = parseMessage(roundEndSchema, raw, 'round end');
    this.emit({ type: 'round-end', end });
  }

  private async onEvaluate(raw: unknown): Promise<void> {
    const req = parseMessage(evaluateRequestSchema, raw, 'evaluate request');
    if (!this.task || req.taskId !== this.task.taskId) return;
    this.bytesDown += req.weights.data.byteLength;
    this.opts.trainer.setWeights(decodeTensors(req.weights, { expected: this.manifest, requireFinite: true }));
    const r = await this.opts.trainer.evaluate();
    const ack = await this.opts.transport.emitWithAck(Events.EVALUATE_RESULT, {
      taskId: req.taskId,
      roundId: req.roundId,
      modelVersion: req.modelVersion,
      numExamples: r.numExamples,
      loss: Number.isFinite(r.loss) ? r.loss : 1e9,
      accuracy: r.accuracy,
    });
    const res = parseMessage(simpleAckSchema, ack, 'evaluate ack');
    if (res.ok) this.emit({ type: 'evaluated', roundId: req.roundId, ...r });
    else this.emit({ type: 'rejected', roundId: req.roundId, error: res.error });
  }

  private onTaskDone(raw: unknown): void {
    const done = parseMessage(taskDoneSchema, raw, 'task done');
    if (this.finished) return;
    this.finished = true;
    this.emit({ type: 'done', done });
    this.resolveDone(done);
  }
}
