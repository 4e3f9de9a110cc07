import { describe, expect, it, vi } from 'vitest';
import { decodeTensors, encodeTensors, type NamedTensor } from './codec.js';
import { ErrorCode } from './errors.js';
import type { ClientToServerEvents, ServerToClientEvents } from './events.js';
import { PROTOCOL_VERSION, type EvaluateRequest, type RoundStart, type Submission, type TaskAssignment } from './messages.js';
import { ClientSession, type ClientTransport, type EvalResult, type SessionEvent, type Trainer, type TrainResult } from './session.js';
import { trainConfigSchema, type TrainConfig } from './task.js';

type C2SEvent = keyof ClientToServerEvents;
type Sent = { event: C2SEvent; payload: unknown };
type AckReply = (payload: unknown) => unknown | Promise<unknown>;

/** In-memory transport: records what the session sends and lets the test play the server. */
class FakeTransport implements ClientTransport {
  readonly sent: Sent[] = [];
  private readonly handlers = new Map<string, (msg: unknown) => void>();
  private readonly connectHandlers: (() => void)[] = [];
  /** Per-event ack the fake server answers with; default `{ ok: true }` (and a join ack for join). */
  readonly acks: Partial<Record<C2SEvent, AckReply>> = {
    join: (p) => ({ ok: true, taskId: 'task-1', clientId: (p as { clientId: string }).clientId }),
  };

  emitWithAck<E extends C2SEvent>(event: E, payload: Parameters<ClientToServerEvents[E]>[0]): Promise<Parameters<Parameters<ClientToServerEvents[E]>[1]>[0]> {
    this.sent.push({ event, payload });
    const reply = this.acks[event] ?? (() => ({ ok: true }));
    return Promise.resolve().then(() => reply(payload)) as Promise<Parameters<Parameters<ClientToServerEvents[E]>[1]>[0]>;
  }

  on<E extends keyof ServerToClientEvents>(event: E, handler: ServerToClientEvents[E]): void {
    this.handlers.set(event, handler as (msg: unknown) => void);
  }

  onConnect(handler: () => void): void {
    this.connectHandlers.push(handler);
  }

  connect(): void {
    for (const h of this.connectHandlers) h();
  }

  /** Delivers a server → client event, possibly malformed (hence `unknown`). */
  deliver(event: keyof ServerToClientEvents, msg: unknown): void {
    const h = this.handlers.get(event);
    if (!h) throw new Error(`session registered no handler for ${event}`);
    h(msg);
  }

  sentOf<E extends C2SEvent>(event: E): Parameters<ClientToServerEvents[E]>[0][] {
    return this.sent.filter((s) => s.event === event).map((s) => s.payload as Parameters<ClientToServerEvents[E]>[0]);
  }
}

/** Deterministic trainer: train() adds 1 to every weight; evaluate() returns fixed numbers. */
class FakeTrainer implements Trainer {
  readonly backend = 'fake-cpu';
  readonly numTrainExamples = 640;
  readonly numTestExamples = 160;
  weights: NamedTensor[] = [];
  readonly loads: { topology: string; train: TrainConfig }[] = [];
  readonly trainedWith: TrainConfig[] = [];
  /** Flat copies of what setWeights received, in order. */
  readonly setCalls: number[][] = [];
  evalResult: EvalResult = { numExamples: 160, loss: 0.4375, accuracy: 0.8125 };

  async loadModel(topology: string, train: TrainConfig): Promise<void> {
    this.loads.push({ topology, train });
  }

  setWeights(weights: readonly NamedTensor[]): void {
    this.weights = weights.map((t) => ({ name: t.name, shape: [...t.shape], values: Float32Array.from(t.values) }));
    this.setCalls.push(weights.flatMap((t) => [...t.values]));
  }

  getWeights(): NamedTensor[] {
    return this.weights.map((t) => ({ name: t.name, shape: [...t.shape], values: Float32Array.from(t.values) }));
  }

  async train(config: TrainConfig, onProgress?: (p: { epoch: number; epochs: number; loss: number }) => void): Promise<TrainResult> {
    this.trainedWith.push(config);
    this.weights = this.weights.map((t) => ({ ...t, values: t.values.map((v) => v + 1) }));
    onProgress?.({ epoch: 1, epochs: config.epochs, loss: 0.5 });
    return { numExamples: this.numTrainExamples, metrics: { loss: 0.5, accuracy: 0.75 } };
  }

  async evaluate(): Promise<EvalResult> {
    return this.evalResult;
  }
}

const TOPOLOGY = JSON.stringify({ class_name: 'Sequential', config: { layers: [] } });
const train = trainConfigSchema.parse({ epochs: 2, learningRate: 0.01, optimizer: 'sgd' });

/** Weights whose values and value+1 are exact in float32, so local − global is exactly 1. */
function weights(values: number[][]): NamedTensor[] {
  return values.map((v, i) => ({ name: `layer${i}`, shape: [v.length], values: Float32Array.from(v) }));
}
const initial = weights([[0, 0, 0], [0]]);
const global = weights([[0.5, -1.25, 3], [7.5]]);

function taskAssignment(over: Partial<TaskAssignment> = {}): TaskAssignment {
  return {
    taskId: 'task-1',
    name: 'unit',
    topology: TOPOLOGY,
    modelVersion: 0,
    weights: encodeTensors(initial),
    train,
    maxPayloadBytes: 1 << 20,
    totalRounds: 3,
    ...over,
  };
}

function roundStart(over: Partial<RoundStart> = {}): RoundStart {
  return { taskId: 'task-1', roundId: 1, modelVersion: 4, deadline: Date.now() + 60_000, train, weights: encodeTensors(global), ...over };
}

function evaluateRequest(over: Partial<EvaluateRequest> = {}): EvaluateRequest {
  return { taskId: 'task-1', roundId: 2, modelVersion: 5, deadline: Date.now() + 60_000, weights: encodeTensors(global), ...over };
}

function setup(opts: { protocolVersion?: number; taskId?: string } = {}) {
  const transport = new FakeTransport();
  const trainer = new FakeTrainer();
  const events: SessionEvent[] = [];
  const session = new ClientSession({
    clientId: 'client-a',
    platform: 'node',
    trainer,
    transport,
    backendReason: 'test',
    onEvent: (e) => events.push(e),
    ...opts,
  });
  session.start();
  const ofType = <T extends SessionEvent['type']>(type: T) => events.filter((e): e is Extract<SessionEvent, { type: T }> => e.type === type);
  return { transport, trainer, events, session, ofType };
}

/** Connects, joins and receives the task assignment. */
async function joinedWithTask() {
  const s = setup();
  s.transport.connect();
  s.transport.deliver('task', taskAssignment());
  await vi.waitFor(() => expect(s.ofType('task')).toHaveLength(1));
  return s;
}

describe('ClientSession', () => {
  it('joins on connect with PROTOCOL_VERSION and the trainer’s counts, again on every reconnect', async () => {
    const { transport, ofType } = setup({ taskId: 'task-1' });
    expect(transport.sent).toHaveLength(0);
    transport.connect();
    // The join waits for the session's receipt key (generated once, asynchronously).
    await vi.waitFor(() => expect(transport.sentOf('join')).toHaveLength(1));
    expect(transport.sentOf('join')).toEqual([
      {
        protocolVersion: PROTOCOL_VERSION,
        clientId: 'client-a',
        platform: 'node',
        backend: 'fake-cpu',
        backendReason: 'test',
        numTrainExamples: 640,
        numTestExamples: 160,
        taskId: 'task-1',
        receiptKey: { kty: 'OKP', crv: 'Ed25519', x: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) },
      },
    ]);
    await vi.waitFor(() => expect(ofType('joined')).toEqual([{ type: 'joined', taskId: 'task-1' }]));
    transport.connect();
    await vi.waitFor(() => expect(transport.sentOf('join')).toHaveLength(2));
    await vi.waitFor(() => expect(ofType('joined')).toHaveLength(2));
  });

  it('a task assignment loads the model once per topology and sets the task’s weights', async () => {
    const { transport, trainer, ofType } = await joinedWithTask();
    expect(trainer.loads).toEqual([{ topology: TOPOLOGY, train }]);
    expect(trainer.setCalls).toEqual([[0, 0, 0, 0]]);
    expect(ofType('task')).toEqual([{ type: 'task', taskId: 'task-1', name: 'unit', modelVersion: 0, totalRounds: 3 }]);

    // Re-assignment (e.g. after a reconnect) with the same topology: new weights, no reload.
    transport.deliver('task', taskAssignment({ modelVersion: 2, weights: encodeTensors(global) }));
    await vi.waitFor(() => expect(ofType('task')).toHaveLength(2));
    expect(trainer.loads).toHaveLength(1);
    expect(trainer.setCalls[1]).toEqual([0.5, -1.25, 3, 7.5]);
  });

  it('a round start trains from the global weights and submits Δ = local − global (all ones)', async () => {
    const { transport, trainer, ofType, session } = await joinedWithTask();
    transport.deliver('round:start', roundStart({ roundId: 1, modelVersion: 4 }));
    await vi.waitFor(() => expect(ofType('submitted')).toHaveLength(1));

    expect(trainer.setCalls.at(-1)).toEqual([0.5, -1.25, 3, 7.5]);
    expect(trainer.trainedWith).toEqual([train]);
    const [sub] = transport.sentOf('submit') as Submission[];
    expect(sub).toMatchObject({ taskId: 'task-1', roundId: 1, baseModelVersion: 4, numExamples: 640, metrics: { loss: 0.5, accuracy: 0.75 } });
    expect(sub!.update.kind).toBe('plain');
    const delta = decodeTensors(sub!.update.tensors, { requireFinite: true });
    expect(delta.map((t) => ({ name: t.name, shape: t.shape, values: [...t.values] }))).toEqual([
      { name: 'layer0', shape: [3], values: [1, 1, 1] },
      { name: 'layer1', shape: [1], values: [1] },
    ]);
    expect(ofType('round-start')).toEqual([{ type: 'round-start', roundId: 1, modelVersion: 4, deadline: expect.any(Number) }]);
    expect(ofType('train-progress')).toEqual([{ type: 'train-progress', roundId: 1, progress: { epoch: 1, epochs: 2, loss: 0.5 } }]);
    expect(ofType('submitted')).toEqual([{ type: 'submitted', roundId: 1, numExamples: 640, bytes: 16, metrics: { loss: 0.5, accuracy: 0.75 } }]);
    expect(session.bytesUp).toBe(16);
    // task weights (16 bytes) + round weights (16 bytes)
    expect(session.bytesDown).toBe(32);
  });

  it('a rejected submission is reported as rejected and not counted as uploaded', async () => {
    const { transport, ofType, session } = await joinedWithTask();
    transport.acks.submit = () => ({ ok: false, error: { code: 'ERR_STALE_ROUND', message: 'round 1 is over' } });
    transport.deliver('round:start', roundStart());
    await vi.waitFor(() => expect(ofType('rejected')).toHaveLength(1));
    expect(ofType('rejected')[0]).toEqual({ type: 'rejected', roundId: 1, error: { code: 'ERR_STALE_ROUND', message: 'round 1 is over' } });
    expect(ofType('submitted')).toHaveLength(0);
    expect(session.bytesUp).toBe(0);
  });

  it('skips a round that a newer round start has already superseded', async () => {
    const { transport, ofType } = await joinedWithTask();
    transport.deliver('round:start', roundStart({ roundId: 1, modelVersion: 4 }));
    transport.deliver('round:start', roundStart({ roundId: 2, modelVersion: 5 }));
    await vi.waitFor(() => expect(ofType('submitted')).toHaveLength(1));
    expect(transport.sentOf('submit').map((s) => [s.roundId, s.baseModelVersion])).toEqual([[2, 5]]);
  });

  it('ignores a round start for another task', async () => {
    const { transport, ofType } = await joinedWithTask();
    transport.deliver('round:start', roundStart({ taskId: 'task-2', roundId: 1 }));
    transport.deliver('round:start', roundStart({ roundId: 2 }));
    await vi.waitFor(() => expect(ofType('submitted')).toHaveLength(1));
    expect(transport.sentOf('submit').map((s) => s.taskId)).toEqual(['task-1']);
  });

  it('a rejected join ack (ERR_PROTOCOL_VERSION) rejects `done` with that code', async () => {
    const { transport, session, ofType } = setup({ protocolVersion: 99 });
    transport.acks.join = () => ({ ok: false, error: { code: 'ERR_PROTOCOL_VERSION', message: 'server speaks protocol 1' } });
    transport.connect();
    await vi.waitFor(() => expect(transport.sentOf('join')).toHaveLength(1));
    expect(transport.sentOf('join')[0]!.protocolVersion).toBe(99);
    await expect(session.done).rejects.toMatchObject({ name: 'TesseraError', code: ErrorCode.PROTOCOL_VERSION, message: 'server speaks protocol 1' });
    expect(ofType('error')).toEqual([{ type: 'error', error: { code: 'ERR_PROTOCOL_VERSION', message: 'server speaks protocol 1' } }]);
    expect(ofType('joined')).toHaveLength(0);
  });

  it('an evaluate request sets its weights and answers evaluate:result with the trainer’s numbers', async () => {
    const { transport, trainer, ofType } = await joinedWithTask();
    transport.deliver('evaluate:start', evaluateRequest({ roundId: 2, modelVersion: 5 }));
    await vi.waitFor(() => expect(ofType('evaluated')).toHaveLength(1));
    expect(trainer.setCalls.at(-1)).toEqual([0.5, -1.25, 3, 7.5]);
    expect(transport.sentOf('evaluate:result')).toEqual([{ taskId: 'task-1', roundId: 2, modelVersion: 5, numExamples: 160, loss: 0.4375, accuracy: 0.8125 }]);
    expect(ofType('evaluated')).toEqual([{ type: 'evaluated', roundId: 2, numExamples: 160, loss: 0.4375, accuracy: 0.8125 }]);
  });

  it('reports a non-finite evaluation loss as a large finite number (the schema requires finite)', async () => {
    const { transport, trainer, ofType } = await joinedWithTask();
    trainer.evalResult = { numExamples: 10, loss: Number.NaN, accuracy: 0.1 };
    transport.deliver('evaluate:start', evaluateRequest());
    await vi.waitFor(() => expect(ofType('evaluated')).toHaveLength(1));
    expect(transport.sentOf('evaluate:result')[0]!.loss).toBe(1e9);
  });

  it('task:done resolves `done` with the message', async () => {
    const { transport, session, ofType } = await joinedWithTask();
    const done = { taskId: 'task-1', status: 'done' as const, modelVersion: 3 };
    transport.deliver('task:done', done);
    await expect(session.done).resolves.toEqual(done);
    expect(ofType('done')).toEqual([{ type: 'done', done }]);
  });

  it('a malformed round start emits ERR_INVALID_MESSAGE and the session keeps working', async () => {
    const { transport, ofType } = await joinedWithTask();
    transport.deliver('round:start', { taskId: 'task-1', roundId: 'one', train });
    await vi.waitFor(() => expect(ofType('error')).toHaveLength(1));
    const [err] = ofType('error');
    expect(err!.error.code).toBe(ErrorCode.INVALID_MESSAGE);
    expect(err!.error.message).toMatch(/^invalid round start at /);
    expect(transport.sentOf('submit')).toHaveLength(0);

    transport.deliver('round:start', roundStart({ roundId: 1, modelVersion: 4 }));
    await vi.waitFor(() => expect(ofType('submitted')).toHaveLength(1));
    expect(transport.sentOf('submit').map((s) => [s.roundId, s.baseModelVersion])).toEqual([[1, 4]]);
  });

  it('a round start with non-finite weights emits ERR_NON_FINITE and submits nothing', async () => {
    const { transport, trainer, ofType } = await joinedWithTask();
    transport.deliver('round:start', roundStart({ weights: encodeTensors(weights([[1, Number.NaN, 0], [0]])) }));
    await vi.waitFor(() => expect(ofType('error')).toHaveLength(1));
    expect(ofType('error')[0]!.error.code).toBe(ErrorCode.NON_FINITE);
    expect(trainer.trainedWith).toHaveLength(0);
    expect(transport.sentOf('submit')).toHaveLength(0);
  });

  it('a round start whose manifest differs from the task’s emits ERR_TENSOR_MISMATCH', async () => {
    const { transport, ofType } = await joinedWithTask();
    transport.deliver('round:start', roundStart({ weights: encodeTensors(weights([[1, 2, 3, 4]])) }));
    await vi.waitFor(() => expect(ofType('error')).toHaveLength(1));
    expect(ofType('error')[0]!.error.code).toBe(ErrorCode.TENSOR_MISMATCH);
    expect(transport.sentOf('submit')).toHaveLength(0);
  });

  // BUG (found by this test): `latestRound` is raised from the raw message before it is validated,
  // so a malformed round start carrying a large roundId makes the session skip every later valid
  // round with a smaller id, silently. Validate first (or only raise latestRound on a parsed message).
  it('a malformed round start does not make the session skip later valid rounds', async () => {
    const { transport, ofType } = await joinedWithTask();
    transport.deliver('round:start', { taskId: 'task-1', roundId: 99 });
    await vi.waitFor(() => expect(ofType('error')).toHaveLength(1));
    transport.deliver('round:start', roundStart({ roundId: 2, modelVersion: 4 }));
    await vi.waitFor(() => expect(ofType('submitted')).toHaveLength(1), { timeout: 500 });
  });

  // BUG (found by this test): join() runs as `void this.join()`, outside the queue, so a join ack
  // that fails validation (or an emitWithAck that rejects, e.g. socket.io's ack timeout) becomes an
  // unhandled promise rejection, which terminates a Node process, instead of an 'error' event.
  it('a malformed join ack is reported as an ERR_INVALID_MESSAGE error event, not an unhandled rejection', async () => {
    const { transport, ofType } = setup();
    transport.acks.join = () => ({ ok: 'yes' });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      transport.connect();
      await new Promise((r) => setTimeout(r, 50));
      expect(unhandled).toEqual([]);
      expect(ofType('error').map((e) => e.error.code)).toEqual([ErrorCode.INVALID_MESSAGE]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
