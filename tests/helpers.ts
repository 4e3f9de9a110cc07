import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { io, type Socket } from 'socket.io-client';
import {
  encodeTensors,
  PROTOCOL_VERSION,
  type ClientToServerEvents,
  type EvaluateRequest,
  type RoundEnd,
  type RoundStart,
  type ServerToClientEvents,
  type TaskAssignment,
  type TaskDone,
  type TaskSpecInput,
} from '@tessera/protocol';
import { createLogger, TesseraServerApp } from '@tessera/server';

export const tmp = (prefix = 'tessera-test-'): string => mkdtempSync(join(tmpdir(), prefix));

/** A tiny Layers model (4 → 3 dense + 3 → 2 dense): 23 parameters, quick to build and to fake. */
export function tinyTopology(): string {
  const m = tf.sequential();
  m.add(tf.layers.dense({ inputShape: [4], units: 3, name: 'hidden' }));
  m.add(tf.layers.dense({ units: 2, activation: 'softmax', name: 'out' }));
  const json = m.toJSON(undefined, true) as string;
  m.dispose();
  return json;
}

export async function startServer(opts: { dataDir?: string; port?: number; events?: Parameters<typeof TesseraServerApp.start>[0] extends infer O ? (O extends { events?: infer E } ? E : never) : never } = {}) {
  return TesseraServerApp.start({ dataDir: opts.dataDir ?? tmp(), port: opts.port ?? 0, logger: createLogger({ silent: !process.env.TESSERA_TEST_LOGS }), ...(opts.events ? { events: opts.events } : {}) });
}

export function tinyTask(over: Partial<TaskSpecInput> = {}): TaskSpecInput {
  return {
    name: 'tiny',
    model: { topology: tinyTopology() },
    rounds: 2,
    clientsPerRound: 2,
    minClients: 2,
    roundDeadlineSeconds: 20,
    evaluateEvery: 0,
    ...over,
  };
}

type Q<T> = { items: T[]; waiters: ((v: T) => void)[] };
function queue<T>(): Q<T> {
  return { items: [], waiters: [] };
}
function push<T>(q: Q<T>, v: T) {
  const w = q.waiters.shift();
  if (w) w(v);
  else q.items.push(v);
}
function next<T>(q: Q<T>, what: string, ms = 15_000): Promise<T> {
  const v = q.items.shift();
  if (v !== undefined) return Promise.resolve(v);
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    q.waiters.push((x) => {
      clearTimeout(t);
      resolve(x);
    });
  });
}

/** A hand-driven client over a real socket.io connection: it joins and then sends what the test says. */
export class FakeClient {
  readonly socket: Socket<ServerToClientEvents, ClientToServerEvents>;
  private readonly tasks = queue<TaskAssignment>();
  private readonly rounds = queue<RoundStart>();
  private readonly ends = queue<RoundEnd>();
  private readonly evals = queue<EvaluateRequest>();
  private readonly dones = queue<TaskDone>();
  readonly connectError: Promise<Error & { data?: { code: string; message: string } }>;

  constructor(url: string, token: string | undefined) {
    this.socket = io(url, { auth: token === undefined ? {} : { token }, transports: ['websocket'], reconnection: false, forceNew: true });
    this.socket.on('task', (m) => push(this.tasks, m));
    this.socket.on('round:start', (m) => push(this.rounds, m));
    this.socket.on('round:end', (m) => push(this.ends, m));
    this.socket.on('evaluate:start', (m) => push(this.evals, m));
    this.socket.on('task:done', (m) => push(this.dones, m));
    this.connectError = new Promise((resolve) => this.socket.on('connect_error', resolve));
  }

  async join(clientId: string, over: Record<string, unknown> = {}) {
    return this.socket.timeout(10_000).emitWithAck('join', {
      protocolVersion: PROTOCOL_VERSION,
      clientId,
      platform: 'node',
      backend: 'fake',
      numTrainExamples: 100,
      numTestExamples: 10,
      ...over,
    } as never);
  }

  task() {
    return next(this.tasks, 'task assignment');
  }
  round() {
    return next(this.rounds, 'round start');
  }
  roundEnd(ms?: number) {
    return next(this.ends, 'round end', ms);
  }
  evaluation() {
    return next(this.evals, 'evaluate request');
  }
  done() {
    return next(this.dones, 'task done');
  }

  /** Emits a raw submit and returns the ack. */
  submitRaw(payload: unknown) {
    return this.socket.timeout(10_000).emitWithAck('submit', payload as never);
  }

  /** Submits a delta of `fill` values shaped like the round's weights. */
  submit(round: RoundStart, fill: number | ((i: number) => number), over: Record<string, unknown> = {}) {
    const tensors = round.weights.manifest.map((m) => {
      const n = m.shape.reduce((a, b) => a * b, 1);
      const values = new Float32Array(n);
      for (let i = 0; i < n; i++) values[i] = typeof fill === 'number' ? fill : fill(i);
      return { name: m.name, shape: m.shape, values };
    });
    return this.submitRaw({
      taskId: round.taskId,
      roundId: round.roundId,
      baseModelVersion: round.modelVersion,
      numExamples: 100,
      metrics: { loss: 1 },
      update: { kind: 'plain', tensors: encodeTensors(tensors) },
      ...over,
    });
  }

  close() {
    this.socket.disconnect();
  }
}
