import { randomInt } from 'node:crypto';
import {
  CiphertextAccumulator,
  ciphertextCount,
  createCkksContext,
  decryptAckSchema,
  hePublicationSchema,
  joinChunks,
  loadSeal,
  parseMessage,
  sha256Hex,
  verifyReceipt,
  type CkksContext,
  type HePublication,
  decodeTensors,
  encodeTensors,
  ErrorCode,
  Events,
  flatten,
  maxPayloadBytesFor,
  parameterCount,
  TesseraError,
  unflatten,
  type EncodedTensors,
  type EvaluateResult,
  type Submission,
  type TaskSpec,
  type TensorSpec,
} from '@tessera/protocol';
import type { Store } from './db.js';
import type { ClientHub, ConnectedClient, TesseraSocket } from './hub.js';
import type { Logger } from './log.js';
import { PrivacyLedger } from './privacy-ledger.js';
import { averageMetrics } from './strategies/fedavg.js';
import type { CandidateClient, EvaluateRes, Failure, FitResult, Strategy } from './strategies/index.js';

let sealRuntime: ReturnType<typeof loadSeal> | undefined;
/** node-seal, loaded once per server process (only for encrypted tasks). */
function seal() {
  sealRuntime ??= loadSeal();
  return sealRuntime;
}

export type RoundState = 'waiting' | 'training' | 'aggregating' | 'evaluating' | 'done' | 'failed' | 'stopped' | 'paused' | 'aborted';

/** Uniform sample of k items without replacement, from node:crypto (partial Fisher–Yates). */
export function pickUniform<T>(k: number, from: readonly T[]): T[] {
  const a = [...from];
  const n = Math.min(k, a.length);
  for (let i = 0; i < n; i++) {
    const j = i + randomInt(a.length - i);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a.slice(0, n);
}

/** A snapshot of the runner for REST and tests. */
export interface RunnerStatus {
  taskId: string;
  state: RoundState;
  roundId: number;
  modelVersion: number;
  completedRounds: number;
  totalRounds: number;
  cohort: string[];
  submitted: string[];
  deadline: number | null;
}

export interface RunnerEvents {
  onRoundEnd?: (e: { roundId: number; status: 'completed' | 'failed'; modelVersion: number; metrics: Record<string, number>; reason?: string }) => void;
  onEvaluated?: (e: { roundId: number; modelVersion: number; metrics: Record<string, number> }) => void;
  onDone?: (e: { status: 'done' | 'failed' | 'aborted' | 'stopped'; modelVersion: number; reason?: string }) => void;
}

/**
 * Orchestrates one task's rounds as an explicit state machine:
 * waiting → training → aggregating → evaluating → (waiting | done | failed).
 * Submissions are validated here; the global model changes only through a completed
 * aggregation that is persisted in the same transaction as its round.
 */
export class TaskRunner {
  state: RoundState = 'waiting';
  private roundId = 0;
  private modelVersion: number;
  private completedRounds: number;
  private global: Float32Array;
  private encodedGlobal: EncodedTensors | undefined;
  private cohort = new Set<string>();
  private accepted = new Map<string, FitResult>();
  private belowClip = new Map<string, boolean>();
  private samplingRate = 1;
  /** The task's DP state (accountant, clip norm, budget), when DP is on. */
  readonly privacy: PrivacyLedger | undefined;
  /** Encrypted tasks: the key holder's publication, its live socket, this round's running sum and receipts. */
  private he: {
    publication?: HePublication;
    ctx?: CkksContext;
    keyholder?: TesseraSocket;
    acc?: CiphertextAccumulator;
    receipts: Map<string, { receiptKey: NonNullable<ConnectedClient['receiptKey']>; receipt: string }>;
    pending: Set<string>;
  } = { receipts: new Map(), pending: new Set() };
  private failures = new Map<string, Failure>();
  private evalCohort = new Set<string>();
  private evalResults = new Map<string, EvaluateRes>();
  private deadline: number | null = null;
  private wakeUp: (() => void) | undefined;
  private stopped = false;
  readonly maxPayloadBytes: number;
  readonly paramCount: number;
  /** Bytes of model weights sent to clients and of updates received, since this process started. */
  readonly traffic = { bytesDown: 0, bytesUp: 0 };

  constructor(
    readonly taskId: string,
    readonly spec: TaskSpec,
    readonly topology: string,
    readonly manifest: TensorSpec[],
    initial: { version: number; weights: Float32Array; completedRounds: number },
    private readonly strategy: Strategy,
    private readonly store: Store,
    private readonly hub: ClientHub,
    private readonly log: Logger,
    private readonly events: RunnerEvents = {},
  ) {
    this.modelVersion = initial.version;
    this.global = initial.weights;
    this.completedRounds = initial.completedRounds;
    this.paramCount = parameterCount(manifest);
    this.maxPayloadBytes = maxPayloadBytesFor(manifest);
    const p = spec.privacy;
    this.privacy = p && p.mode !== 'off' ? new PrivacyLedger(store, taskId, p, spec.clientsPerRound, spec.minClients) : undefined;
  }

  /** Loads the stored key holder publication (after a restart), so clients get it on join. */
  async restoreHe(): Promise<void> {
    if (!this.spec.he) return;
    const stored = this.store.getHePublication(this.taskId);
    if (stored) await this.usePublication(hePublicationSchema.parse(stored));
  }

  private async usePublication(pub: HePublication): Promise<void> {
    const { seal: module } = await seal();
    let ctx: CkksContext;
    try {
      ctx = createCkksContext(module, pub.params);
    } catch (e) {
      throw new TesseraError(ErrorCode.CKKS_PARAMETERS, `key holder parameters rejected: ${(e as Error).message}`);
    }
    if (this.he.ctx && this.state !== 'training') this.he.ctx.dispose();
    this.he.ctx = ctx;
    this.he.publication = pub;
  }

  /** The key holder (re)published its key: persist it, hand it to clients, and keep its socket for decryption. */
  async setKeyholder(socket: TesseraSocket, pub: HePublication): Promise<void> {
    if (!this.spec.he) throw new TesseraError(ErrorCode.INVALID_MESSAGE, `task ${this.taskId} is not encrypted`);
    const changed = this.he.publication?.signature !== pub.signature;
    if (changed) {
      if (this.state === 'training') throw new TesseraError(ErrorCode.ROUND_CLOSED, 'a round is in progress under the current key; republish between rounds');
      await this.usePublication(pub);
      this.store.putHePublication(this.taskId, pub);
    }
    this.he.keyholder = socket;
    this.log.info(`key holder ${socket.data.claims.sub} connected${changed ? ' and published its public key' : ''}`, { params: pub.params });
    if (changed) for (const c of this.hub.forTask(this.taskId)) this.assign(c);
    this.wake();
  }

  keyholderLeft(socket: TesseraSocket): void {
    if (this.he.keyholder?.id === socket.id) {
      this.he.keyholder = undefined;
      this.log.warn('key holder disconnected');
    }
  }

  status(): RunnerStatus {
    return {
      taskId: this.taskId,
      state: this.state,
      roundId: this.roundId,
      modelVersion: this.modelVersion,
      completedRounds: this.completedRounds,
      totalRounds: this.spec.rounds,
      cohort: [...this.cohort],
      submitted: [...this.accepted.keys()],
      deadline: this.deadline,
    };
  }

  /** The current global weights, encoded once per version. */
  globalWeights(): EncodedTensors {
    this.encodedGlobal ??= encodeTensors(unflatten(this.global, this.manifest));
    return this.encodedGlobal;
  }

  currentModelVersion(): number {
    return this.modelVersion;
  }

  /** Sends the task assignment to a client that just joined. */
  assign(c: ConnectedClient): void {
    this.traffic.bytesDown += this.globalWeights().data.byteLength;
    c.socket.emit(Events.TASK, {
      taskId: this.taskId,
      name: this.spec.name,
      topology: this.topology,
      modelVersion: this.modelVersion,
      weights: this.globalWeights(),
      train: this.spec.train,
      maxPayloadBytes: this.maxPayloadBytes,
      totalRounds: this.spec.rounds,
      ...(this.he.publication ? { he: this.he.publication } : {}),
    });
    this.wake();
  }

  /** A client's socket went away: a cohort member that had not submitted becomes a failure. */
  clientLeft(clientId: string): void {
    if (this.state === 'training' && this.cohort.has(clientId) && !this.accepted.has(clientId)) {
      this.failures.set(clientId, { clientId, reason: 'disconnected' });
      this.log.info(`round ${this.roundId}: ${clientId} disconnected before submitting`);
    }
    if (this.state === 'evaluating') this.evalCohort.delete(clientId);
    this.wake();
  }

  /** Admin pause: stops orchestrating without ending the task (a new runner resumes it from its checkpoint). */
  pause(): void {
    this.stop();
    this.state = 'paused';
  }

  /** Admin abort: ends the task for good; an open round fails, clients get task:done 'aborted'. */
  abort(reason = 'aborted by an admin'): void {
    const open = this.state === 'training' || this.state === 'aggregating';
    this.stop();
    if (open) this.store.failRound(this.taskId, this.roundId, reason);
    this.finish('aborted', reason);
  }

  stop(): void {
    this.stopped = true;
    this.wake();
  }

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = undefined;
    w?.();
  }

  /** Waits until `done()` holds or the deadline passes; returns whether it holds. */
  private async waitUntil(done: () => boolean, deadline: number): Promise<boolean> {
    for (;;) {
      if (this.stopped) return false;
      if (done()) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 2_147_000_000));
        this.wakeUp = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  private candidates(filter: (c: ConnectedClient) => boolean): CandidateClient[] {
    return this.hub
      .forTask(this.taskId)
      .filter(filter)
      .map((c) => ({ clientId: c.clientId, numTrainExamples: c.numTrainExamples }));
  }

  /** Runs rounds until the task has its configured number of completed rounds. */
  async run(): Promise<void> {
    let consecutiveFailures = 0;
    this.log.info(`task ${this.taskId} running`, { completedRounds: this.completedRounds, rounds: this.spec.rounds, modelVersion: this.modelVersion });
    while (!this.stopped && this.completedRounds < this.spec.rounds) {
      this.state = 'waiting';
      if (this.spec.he && !this.he.publication) {
        this.log.info('waiting for the key holder to publish its public key');
        await this.waitUntil(() => this.he.publication !== undefined, Date.now() + this.spec.waitForClientsSeconds * 1000);
        continue;
      }
      const eligible = () => this.candidates((c) => c.numTrainExamples > 0).length;
      const target = Math.max(this.spec.waitForClients ?? this.spec.minClients, this.spec.minClients);
      // Wait for the target head-count, but settle for minClients once the wait is over.
      await this.waitUntil(() => eligible() >= target, Date.now() + this.spec.waitForClientsSeconds * 1000);
      const enough = eligible() >= this.spec.minClients || (await this.waitUntil(() => eligible() >= this.spec.minClients, Date.now() + this.spec.waitForClientsSeconds * 1000));
      if (this.stopped) return;
      if (!enough) {
        this.log.info(`waiting for clients: ${this.candidates((c) => c.numTrainExamples > 0).length}/${this.spec.minClients} connected`);
        continue;
      }
      const outcome = await this.trainingRound();
      if (this.stopped || outcome === 'stopped') return;
      if (outcome === 'completed') {
        consecutiveFailures = 0;
        const due = this.spec.evaluateEvery > 0 && (this.completedRounds % this.spec.evaluateEvery === 0 || this.completedRounds === this.spec.rounds);
        if (due) await this.evaluationRound();
      } else if (++consecutiveFailures >= this.spec.maxConsecutiveFailures) {
        this.finish('failed', `${consecutiveFailures} rounds failed in a row`);
        return;
      }
    }
    if (!this.stopped) this.finish('done');
  }

  private finish(status: 'done' | 'failed' | 'stopped' | 'aborted', reason?: string): void {
    this.state = status;
    this.store.setTaskStatus(this.taskId, status, reason ?? null);
    this.log.info(`task ${this.taskId} ${status}`, { modelVersion: this.modelVersion, completedRounds: this.completedRounds, ...(reason ? { reason } : {}) });
    for (const c of this.hub.forTask(this.taskId)) {
      c.socket.emit(Events.TASK_DONE, { taskId: this.taskId, status, modelVersion: this.modelVersion, ...(reason ? { reason } : {}) });
    }
    this.events.onDone?.({ status, modelVersion: this.modelVersion, ...(reason ? { reason } : {}) });
  }

  private async trainingRound(): Promise<'completed' | 'failed' | 'stopped'> {
    const spec = this.spec;
    const roundId = this.store.lastRoundId(this.taskId) + 1;
    const candidates = this.candidates((c) => c.numTrainExamples > 0);
    const size = Math.min(candidates.length, Math.ceil(spec.clientsPerRound * spec.overSelection));
    const chosen = this.strategy.configureRound(roundId, candidates, size, pickUniform);
    // Sampling rate for the accountant: the cohort is a uniform sample of the eligible clients.
    this.samplingRate = Math.min(1, chosen.length / Math.max(1, candidates.length));
    if (this.privacy) {
      const next = this.privacy.preview(this.samplingRate);
      if (next.exceeds) {
        const budget = this.privacy.config.budget!;
        const reason = `ERR_PRIVACY_BUDGET: round ${roundId} would bring ε to ${next.epsilon.toFixed(4)} > budget ${budget.epsilon} (δ=${budget.delta}); spent so far ε=${this.privacy.spent().epsilon.toFixed(4)}`;
        this.privacy.stopped = { code: 'ERR_PRIVACY_BUDGET', reason };
        this.log.warn(reason);
        this.finish('stopped', reason);
        return 'stopped';
      }
    }
    this.roundId = roundId;
    this.cohort = new Set(chosen.map((c) => c.clientId));
    this.accepted = new Map();
    this.belowClip = new Map();
    if (this.spec.he) {
      this.he.acc?.dispose();
      this.he.acc = new CiphertextAccumulator(this.he.ctx!, this.paramCount);
      this.he.receipts = new Map();
      this.he.pending = new Set();
    }
    this.failures = new Map();
    this.deadline = Date.now() + spec.roundDeadlineSeconds * 1000;
    this.store.startRound(this.taskId, roundId, this.modelVersion, [...this.cohort]);
    this.state = 'training';
    this.log.info(`round ${roundId} started`, { cohort: [...this.cohort], modelVersion: this.modelVersion, deadlineSeconds: spec.roundDeadlineSeconds });
    const weights = this.globalWeights();
    const trafficAtStart = { ...this.traffic };
    for (const id of this.cohort) {
      const c = this.hub.get(id);
      if (c) this.traffic.bytesDown += weights.data.byteLength;
      c?.socket.emit(Events.ROUND_START, {
        taskId: this.taskId,
        roundId,
        modelVersion: this.modelVersion,
        deadline: this.deadline,
        train: spec.train,
        weights,
        ...(this.privacy ? { privacy: this.privacy.roundPrivacy() } : {}),
      });
    }
    const pending = () => [...this.cohort].filter((id) => !this.accepted.has(id) && !this.failures.has(id)).length;
    await this.waitUntil(() => this.accepted.size >= spec.clientsPerRound || pending() === 0, this.deadline);
    if (this.stopped) return 'failed';
    this.state = 'aggregating';
    this.store.setRoundStatus(this.taskId, roundId, 'aggregating');
    for (const id of this.cohort) {
      if (!this.accepted.has(id) && !this.failures.has(id)) this.failures.set(id, { clientId: id, reason: 'deadline passed' });
    }
    const results = [...this.accepted.values()];
    const failures = [...this.failures.values()];
    if (results.length < spec.minClients) {
      return this.failRound(roundId, `${results.length} valid submissions, ${spec.minClients} needed`);
    }
    let out;
    try {
      if (this.spec.he) {
        const sum = await this.decryptAggregate(roundId, results.length);
        if (!sum) return this.failRound(roundId, 'the key holder did not decrypt the aggregate before the deadline');
        out = this.aggregateDecrypted(roundId, sum, results, failures);
      } else {
        out = this.privacy ? this.aggregatePrivately(roundId, results, failures) : this.strategy.aggregate(roundId, this.global, results, failures);
      }
    } catch (e) {
      return this.failRound(roundId, `aggregation failed: ${(e as Error).message}`);
    }
    // Never let a bad aggregate become the global model.
    for (let i = 0; i < out.weights.length; i++) {
      if (!Number.isFinite(out.weights[i]!)) return this.failRound(roundId, 'aggregate has non-finite values');
    }
    const version = this.modelVersion + 1;
    const data = encodeTensors(unflatten(out.weights, this.manifest)).data;
    const metrics = {
      ...out.metrics,
      failures: failures.length,
      bytesDown: this.traffic.bytesDown - trafficAtStart.bytesDown,
      bytesUp: this.traffic.bytesUp - trafficAtStart.bytesUp,
    };
    const ledger = this.privacy?.account(this.samplingRate, results.map((r) => this.belowClip.get(r.clientId) ?? false));
    if (ledger) Object.assign(metrics, { epsilon: ledger.epsilon, delta: ledger.delta, clipNorm: ledger.clipNorm, samplingRate: ledger.samplingRate });
    this.store.completeRound({ taskId: this.taskId, version, roundId, manifest: this.manifest, data }, metrics, results.map((r) => r.clientId), ledger);
    this.global = out.weights;
    this.encodedGlobal = undefined;
    this.modelVersion = version;
    this.completedRounds++;
    this.log.info(`round ${roundId} completed`, { modelVersion: version, accepted: results.length, failures: failures.length, ...roundMetricsForLog(metrics) });
    this.broadcastRoundEnd(roundId, 'completed', metrics);
    this.events.onRoundEnd?.({ roundId, status: 'completed', modelVersion: version, metrics });
    this.cohort = new Set();
    return 'completed';
  }

  /**
   * DP-FedAvg's aggregation (McMahan et al. 2018): clipped updates weighted uniformly, summed,
   * central noise N(0, (z·C)²) added where configured, divided by the fixed expected cohort size
   * (so one client's influence is bounded by C/m whatever the turnout). The strategy then applies
   * its server step to that average as if it were a single result.
   */
  private aggregatePrivately(roundId: number, results: readonly FitResult[], failures: readonly Failure[]) {
    const sum = new Float64Array(this.global.length);
    for (const r of results) for (let i = 0; i < sum.length; i++) sum[i]! += r.delta[i]!;
    const noise = this.privacy!.centralNoise(sum.length);
    if (noise) for (let i = 0; i < sum.length; i++) sum[i]! += noise[i]!;
    const m = this.spec.clientsPerRound;
    const avg = new Float32Array(sum.length);
    for (let i = 0; i < avg.length; i++) avg[i] = sum[i]! / m;
    const out = this.strategy.aggregate(roundId, this.global, [{ clientId: 'dp-aggregate', numExamples: 1, delta: avg, metrics: {} }], failures);
    return { weights: out.weights, metrics: { ...averageMetrics(results), clients: results.length, numExamples: results.reduce((n, r) => n + r.numExamples, 0) } };
  }

  /**
   * Sends the round's ciphertext sum and the contributors' receipts to the key holder and waits
   * (until the round deadline) for Σwᵢ·Δᵢ and Σwᵢ. The key holder never sees an individual ciphertext.
   */
  private async decryptAggregate(roundId: number, contributors: number): Promise<{ values: Float64Array; weight: number } | undefined> {
    const deadline = Math.max(this.deadline ?? 0, Date.now() + 1000);
    const aggregate = this.he.acc!.result();
    const receipts = [...this.he.receipts].map(([clientId, r]) => ({ clientId, receiptKey: r.receiptKey, receipt: r.receipt }));
    for (;;) {
      await this.waitUntil(() => this.he.keyholder?.connected === true, deadline);
      const kh = this.he.keyholder;
      if (!kh?.connected || this.stopped) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      try {
        const raw: unknown = await kh.timeout(left).emitWithAck('keyholder:decrypt', { taskId: this.taskId, roundId, length: this.paramCount, aggregate: joinChunks(aggregate), receipts });
        const ack = parseMessage(decryptAckSchema, raw, 'decryption result');
        if (!ack.ok) {
          this.log.warn(`key holder refused to decrypt round ${roundId}: ${ack.error.code} ${ack.error.message}`);
          return undefined;
        }
        const bytes = ack.values;
        if (bytes.byteLength !== this.paramCount * 8) throw new TesseraError(ErrorCode.INVALID_MESSAGE, 'decrypted aggregate has the wrong length');
        const values = new Float64Array(new Uint8Array(bytes).buffer);
        this.log.info(`round ${roundId}: key holder decrypted the sum of ${contributors} encrypted updates`, { weight: ack.weight });
        return { values, weight: ack.weight };
      } catch (e) {
        if (e instanceof TesseraError) throw e;
        if (kh.connected) return undefined; // timed out while connected: the deadline has passed
        // The key holder dropped mid-request: wait for it to come back within the deadline.
      }
    }
  }

  /** From the decrypted Σwᵢ·Δᵢ to the next model: FedAvg's mean, or DP-FedAvg's fixed-denominator mean with central noise. */
  private aggregateDecrypted(roundId: number, sum: { values: Float64Array; weight: number }, results: readonly FitResult[], failures: readonly Failure[]) {
    const n = this.paramCount;
    const avg = new Float32Array(n);
    if (this.privacy) {
      const noise = this.privacy.centralNoise(n);
      const m = this.spec.clientsPerRound;
      for (let i = 0; i < n; i++) avg[i] = (sum.values[i]! + (noise ? noise[i]! : 0)) / m;
    } else {
      if (!(sum.weight > 0)) throw new TesseraError(ErrorCode.INVALID_MESSAGE, 'decrypted weight is not positive');
      for (let i = 0; i < n; i++) avg[i] = sum.values[i]! / sum.weight;
    }
    const out = this.strategy.aggregate(roundId, this.global, [{ clientId: 'he-aggregate', numExamples: 1, delta: avg, metrics: {} }], failures);
    return { weights: out.weights, metrics: { ...averageMetrics(results), clients: results.length, numExamples: Math.round(sum.weight) } };
  }

  private failRound(roundId: number, reason: string): 'failed' {
    this.store.failRound(this.taskId, roundId, reason);
    this.log.warn(`round ${roundId} failed: ${reason}; model stays at v${this.modelVersion}`);
    this.broadcastRoundEnd(roundId, 'failed', {}, reason);
    this.events.onRoundEnd?.({ roundId, status: 'failed', modelVersion: this.modelVersion, metrics: {}, reason });
    this.cohort = new Set();
    return 'failed';
  }

  private broadcastRoundEnd(roundId: number, status: 'completed' | 'failed', metrics: Record<string, number>, reason?: string): void {
    for (const c of this.hub.forTask(this.taskId)) {
      c.socket.emit(Events.ROUND_END, { taskId: this.taskId, roundId, status, modelVersion: this.modelVersion, metrics, ...(reason ? { reason } : {}) });
    }
  }

  private async evaluationRound(): Promise<void> {
    const roundId = this.roundId;
    const candidates = this.strategy.configureEvaluate(roundId, this.candidates((c) => c.numTestExamples > 0));
    if (candidates.length === 0) return;
    this.state = 'evaluating';
    this.store.setRoundStatus(this.taskId, roundId, 'completed');
    this.evalCohort = new Set(candidates.map((c) => c.clientId));
    this.evalResults = new Map();
    const deadline = Date.now() + (this.spec.evaluateDeadlineSeconds ?? this.spec.roundDeadlineSeconds) * 1000;
    this.deadline = deadline;
    const weights = this.globalWeights();
    for (const id of this.evalCohort) {
      const c = this.hub.get(id);
      if (c) this.traffic.bytesDown += weights.data.byteLength;
      c?.socket.emit(Events.EVALUATE, { taskId: this.taskId, roundId, modelVersion: this.modelVersion, deadline, weights });
    }
    await this.waitUntil(() => [...this.evalCohort].every((id) => this.evalResults.has(id)), deadline);
    const results = [...this.evalResults.values()];
    const failures = [...this.evalCohort].filter((id) => !this.evalResults.has(id)).map((id) => ({ clientId: id, reason: 'no evaluation result' }));
    const metrics = this.strategy.aggregateEvaluate(roundId, results, failures);
    this.store.setRoundEval(this.taskId, roundId, metrics);
    this.log.info(`round ${roundId} evaluation`, { modelVersion: this.modelVersion, ...roundMetricsForLog(metrics) });
    this.events.onEvaluated?.({ roundId, modelVersion: this.modelVersion, metrics });
    this.evalCohort = new Set();
  }

  /** Validates a submission against the round and the model; throws TesseraError with the reason's code. */
  async submit(client: ConnectedClient, sub: Submission): Promise<void> {
    if (sub.taskId !== this.taskId) throw new TesseraError(ErrorCode.UNKNOWN_TASK, `client is in task ${this.taskId}, not ${sub.taskId}`);
    if (this.roundId === 0) throw new TesseraError(ErrorCode.UNKNOWN_ROUND, `no round has started for task ${this.taskId}`);
    if (sub.roundId > this.roundId) throw new TesseraError(ErrorCode.FUTURE_ROUND, `round ${sub.roundId} has not started (current ${this.roundId})`);
    if (sub.roundId < this.roundId) throw new TesseraError(ErrorCode.STALE_ROUND, `round ${sub.roundId} is over (current ${this.roundId})`);
    if (this.state !== 'training') throw new TesseraError(ErrorCode.ROUND_CLOSED, `round ${sub.roundId} no longer accepts updates`);
    if (sub.baseModelVersion !== this.modelVersion) {
      throw new TesseraError(ErrorCode.STALE_MODEL, `update is based on model v${sub.baseModelVersion}, current is v${this.modelVersion}`);
    }
    if (!this.cohort.has(client.clientId)) throw new TesseraError(ErrorCode.NOT_IN_COHORT, `${client.clientId} was not selected for round ${sub.roundId}`);
    if (this.accepted.has(client.clientId) || this.he.pending.has(client.clientId)) {
      throw new TesseraError(ErrorCode.DUPLICATE_SUBMISSION, `${client.clientId} already submitted in round ${sub.roundId}`);
    }
    if (this.spec.he !== (sub.update.kind === 'ckks')) {
      throw new TesseraError(ErrorCode.INVALID_MESSAGE, this.spec.he ? 'this task takes encrypted (ckks) updates only' : 'this task takes plaintext updates only');
    }
    if (sub.update.kind === 'ckks') return this.submitEncrypted(client, sub, sub.update);
    if (sub.numExamples > client.numTrainExamples) {
      throw new TesseraError(ErrorCode.INVALID_MESSAGE, `numExamples ${sub.numExamples} exceeds the ${client.numTrainExamples} examples declared at join`);
    }
    const update = sub.update as Extract<Submission['update'], { kind: 'plain' }>;
    const bytes = update.tensors.data.byteLength;
    this.traffic.bytesUp += bytes;
    if (bytes > this.maxPayloadBytes) throw new TesseraError(ErrorCode.PAYLOAD_TOO_LARGE, `update of ${bytes} bytes exceeds the task's limit of ${this.maxPayloadBytes}`);
    const tensors = decodeTensors(update.tensors, { expected: this.manifest, requireFinite: true });
    const delta = flatten(tensors);
    if (this.spec.maxUpdateNorm !== undefined) {
      let s = 0;
      for (let i = 0; i < delta.length; i++) s += delta[i]! * delta[i]!;
      const norm = Math.sqrt(s);
      if (norm > this.spec.maxUpdateNorm) throw new TesseraError(ErrorCode.NORM_BOUND, `update norm ${norm.toPrecision(4)} exceeds ${this.spec.maxUpdateNorm}`);
    }
    if (this.privacy) {
      const { mode, clipNorm } = this.privacy.roundPrivacy();
      if (!sub.dp) throw new TesseraError(ErrorCode.INVALID_MESSAGE, 'this task runs with differential privacy: the submission must carry its dp fields');
      // In central mode updates arrive clipped and noiseless, so the bound is checkable.
      if (mode === 'central') {
        let s = 0;
        for (let i = 0; i < delta.length; i++) s += delta[i]! * delta[i]!;
        if (Math.sqrt(s) > clipNorm * (1 + 1e-4)) throw new TesseraError(ErrorCode.NORM_BOUND, `update norm ${Math.sqrt(s).toPrecision(4)} exceeds the clip norm ${clipNorm.toPrecision(4)}`);
      }
      this.belowClip.set(client.clientId, sub.dp.belowClip);
    }
    this.accepted.set(client.clientId, { clientId: client.clientId, numExamples: sub.numExamples, delta, metrics: sub.metrics });
    this.log.info(`round ${this.roundId}: update from ${client.clientId} accepted`, { numExamples: sub.numExamples, accepted: this.accepted.size, cohort: this.cohort.size });
    this.wake();
  }

  private async submitEncrypted(client: ConnectedClient, sub: Submission, update: Extract<Submission['update'], { kind: 'ckks' }>): Promise<void> {
    const ctx = this.he.ctx!;
    const bytes = update.ciphertexts.reduce((n, c) => n + c.byteLength, 0);
    const expected = ciphertextCount(this.paramCount, ctx.slotCount);
    // Bit-packed ciphertexts: 2 polynomials × N coefficients × data-modulus bits, plus headers.
    const limit = expected * (2 * ctx.params.polyModulusDegree * 8 * Math.max(1, ctx.params.coeffModulusBits.length - 1) + 4096);
    this.traffic.bytesUp += bytes;
    if (bytes > limit) throw new TesseraError(ErrorCode.PAYLOAD_TOO_LARGE, `encrypted update of ${bytes} bytes exceeds the task's limit of ${limit}`);
    if (update.ciphertexts.length !== expected) throw new TesseraError(ErrorCode.CIPHERTEXT, `expected ${expected} ciphertexts, got ${update.ciphertexts.length}`);
    if (!client.receiptKey) throw new TesseraError(ErrorCode.RECEIPT, 'no receipt key was registered at join');
    const roundId = this.roundId;
    this.he.pending.add(client.clientId);
    try {
      const payload = await verifyReceipt(client.receiptKey, update.receipt);
      if (payload.taskId !== this.taskId || payload.roundId !== sub.roundId || payload.clientId !== client.clientId) {
        throw new TesseraError(ErrorCode.RECEIPT, 'receipt is for another task, round or client');
      }
      const hashes = await Promise.all(update.ciphertexts.map(sha256Hex));
      if (payload.ciphertexts.length !== hashes.length || hashes.some((h, i) => h !== payload.ciphertexts[i])) {
        throw new TesseraError(ErrorCode.RECEIPT, 'receipt does not match the submitted ciphertexts');
      }
      // The round may have closed while we verified.
      if (this.roundId !== roundId || this.state !== 'training') throw new TesseraError(ErrorCode.ROUND_CLOSED, `round ${sub.roundId} no longer accepts updates`);
      try {
        this.he.acc!.add(update.ciphertexts); // all or nothing: a bad ciphertext leaves the sum as it was
      } catch (e) {
        throw new TesseraError(ErrorCode.CIPHERTEXT, (e as Error).message);
      }
    } finally {
      this.he.pending.delete(client.clientId);
    }
    this.he.receipts.set(client.clientId, { receiptKey: client.receiptKey, receipt: update.receipt });
    if (this.privacy && sub.dp) this.belowClip.set(client.clientId, sub.dp.belowClip);
    this.accepted.set(client.clientId, { clientId: client.clientId, numExamples: 1, delta: new Float32Array(0), metrics: sub.metrics });
    this.log.info(`round ${this.roundId}: encrypted update from ${client.clientId} accepted`, { ciphertexts: update.ciphertexts.length, bytes, accepted: this.accepted.size, cohort: this.cohort.size });
    this.wake();
  }

  /** Records a federated-evaluation result for the current evaluation. */
  evaluateResult(client: ConnectedClient, res: EvaluateResult): void {
    if (res.taskId !== this.taskId) throw new TesseraError(ErrorCode.UNKNOWN_TASK, `client is in task ${this.taskId}, not ${res.taskId}`);
    if (this.state !== 'evaluating' || res.roundId !== this.roundId) throw new TesseraError(ErrorCode.STALE_ROUND, `no evaluation open for round ${res.roundId}`);
    if (res.modelVersion !== this.modelVersion) throw new TesseraError(ErrorCode.STALE_MODEL, `evaluated v${res.modelVersion}, current is v${this.modelVersion}`);
    if (!this.evalCohort.has(client.clientId)) throw new TesseraError(ErrorCode.NOT_IN_COHORT, `${client.clientId} was not asked to evaluate`);
    if (this.evalResults.has(client.clientId)) throw new TesseraError(ErrorCode.DUPLICATE_SUBMISSION, `${client.clientId} already reported its evaluation`);
    if (res.numExamples > client.numTestExamples) throw new TesseraError(ErrorCode.INVALID_MESSAGE, `numExamples ${res.numExamples} exceeds the ${client.numTestExamples} test examples declared at join`);
    this.evalResults.set(client.clientId, { clientId: client.clientId, numExamples: res.numExamples, loss: res.loss, accuracy: res.accuracy });
    this.wake();
  }
}

function roundMetricsForLog(m: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, Number.isInteger(v) ? v : Number(v.toFixed(4))]));
}
