import { describe, expect, it } from 'vitest';
import { decodeTensors, encodeTensors } from './codec.js';
import { ErrorCode, TesseraError } from './errors.js';
import { joinAckSchema, joinRequestSchema, parseMessage, PROTOCOL_VERSION, submissionSchema } from './messages.js';
import { taskSpecSchema, trainConfigSchema } from './task.js';

function validJoin(): Record<string, unknown> {
  return {
    protocolVersion: PROTOCOL_VERSION,
    clientId: 'node-1.a_b:c@d',
    platform: 'node',
    backend: 'tensorflow',
    numTrainExamples: 600,
    numTestExamples: 100,
  };
}

function validSubmission(data: Uint8Array | ArrayBuffer): Record<string, unknown> {
  return {
    taskId: 'task-1',
    roundId: 3,
    baseModelVersion: 2,
    numExamples: 600,
    metrics: { loss: 0.25, accuracy: 0.9 },
    update: { kind: 'plain', tensors: { manifest: [{ name: 'w', shape: [2, 2], dtype: 'float32' }], data } },
  };
}

const weights = encodeTensors([{ name: 'w', shape: [2, 2], values: Float32Array.from([1.5, -2, 0.25, 8]) }]);

/** Runs fn, expects ERR_INVALID_MESSAGE and returns its message. */
function invalid(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(TesseraError);
    expect((e as TesseraError).code).toBe(ErrorCode.INVALID_MESSAGE);
    return (e as TesseraError).message;
  }
  throw new Error('expected ERR_INVALID_MESSAGE, nothing was thrown');
}

describe('parseMessage: join', () => {
  it('accepts a valid join and returns the parsed value', () => {
    expect(parseMessage(joinRequestSchema, validJoin(), 'join')).toEqual(validJoin());
    const withOptional = { ...validJoin(), platform: 'browser', backendReason: 'webgl unavailable', taskId: 'task-7' };
    expect(parseMessage(joinRequestSchema, withOptional, 'join')).toEqual(withOptional);
  });

  it('rejects a missing field, naming it', () => {
    const { clientId: _omit, ...noClient } = validJoin();
    const msg = invalid(() => parseMessage(joinRequestSchema, noClient, 'join'));
    expect(msg).toMatch(/^invalid join at clientId: /);
  });

  it('rejects wrong types, naming the path', () => {
    expect(invalid(() => parseMessage(joinRequestSchema, { ...validJoin(), numTrainExamples: '600' }, 'join'))).toMatch(/^invalid join at numTrainExamples: /);
    expect(invalid(() => parseMessage(joinRequestSchema, { ...validJoin(), numTestExamples: 1.5 }, 'join'))).toMatch(/ at numTestExamples: /);
    expect(invalid(() => parseMessage(joinRequestSchema, { ...validJoin(), numTestExamples: -1 }, 'join'))).toMatch(/ at numTestExamples: /);
    expect(invalid(() => parseMessage(joinRequestSchema, { ...validJoin(), platform: 'deno' }, 'join'))).toMatch(/ at platform: /);
    expect(invalid(() => parseMessage(joinRequestSchema, { ...validJoin(), protocolVersion: '1' }, 'join'))).toMatch(/ at protocolVersion: /);
  });

  it('rejects client ids with spaces or other characters outside the id alphabet', () => {
    for (const clientId of ['node 1', ' node1', 'node1\n', 'a/b', 'é', '']) {
      expect(invalid(() => parseMessage(joinRequestSchema, { ...validJoin(), clientId }, 'join'))).toMatch(/^invalid join at clientId: /);
    }
    expect(invalid(() => parseMessage(joinRequestSchema, { ...validJoin(), clientId: 'x'.repeat(129) }, 'join'))).toMatch(/ at clientId: /);
    expect(parseMessage(joinRequestSchema, { ...validJoin(), clientId: 'x'.repeat(128) }, 'join').clientId).toHaveLength(128);
  });

  it('rejects a non-object without a path', () => {
    for (const v of [null, undefined, 'join', 42, [validJoin()]]) {
      expect(invalid(() => parseMessage(joinRequestSchema, v, 'join'))).toMatch(/^invalid join: /);
    }
  });
});

describe('parseMessage: submission', () => {
  it('accepts Uint8Array data and keeps it decodable', () => {
    const sub = parseMessage(submissionSchema, validSubmission(weights.data), 'submission');
    expect(sub.update.kind).toBe('plain');
    expect(sub.update.tensors.data).toBeInstanceOf(Uint8Array);
    expect([...decodeTensors(sub.update.tensors)[0]!.values]).toEqual([1.5, -2, 0.25, 8]);
    expect(sub.metrics).toEqual({ loss: 0.25, accuracy: 0.9 });
    expect(sub.baseModelVersion).toBe(2);
  });

  it('accepts ArrayBuffer data and turns it into a Uint8Array over the same bytes', () => {
    const ab = weights.data.slice().buffer;
    const sub = parseMessage(submissionSchema, validSubmission(ab), 'submission');
    expect(sub.update.tensors.data).toBeInstanceOf(Uint8Array);
    expect(sub.update.tensors.data.byteLength).toBe(16);
    expect([...decodeTensors(sub.update.tensors)[0]!.values]).toEqual([1.5, -2, 0.25, 8]);
  });

  it('rejects data that is not binary, naming the nested path', () => {
    for (const data of [[1, 2, 3], 'AAAA', { 0: 1 }, new Float32Array(4)]) {
      expect(invalid(() => parseMessage(submissionSchema, validSubmission(data as unknown as Uint8Array), 'submission'))).toMatch(
        /^invalid submission at update\.tensors\.data: expected binary data$/,
      );
    }
  });

  it('rejects a missing or wrong-typed field with its path', () => {
    const { numExamples: _n, ...noCount } = validSubmission(weights.data);
    expect(invalid(() => parseMessage(submissionSchema, noCount, 'submission'))).toMatch(/^invalid submission at numExamples: /);
    expect(invalid(() => parseMessage(submissionSchema, { ...validSubmission(weights.data), numExamples: 0 }, 'submission'))).toMatch(/ at numExamples: /);
    expect(invalid(() => parseMessage(submissionSchema, { ...validSubmission(weights.data), roundId: 0 }, 'submission'))).toMatch(/ at roundId: /);
    expect(invalid(() => parseMessage(submissionSchema, { ...validSubmission(weights.data), metrics: { loss: 'low' } }, 'submission'))).toMatch(/ at metrics\.loss: /);
    expect(invalid(() => parseMessage(submissionSchema, { ...validSubmission(weights.data), taskId: 'task 1' }, 'submission'))).toMatch(/ at taskId: /);
  });

  it('rejects an unknown update kind and a bad manifest entry', () => {
    const sub = validSubmission(weights.data);
    expect(invalid(() => parseMessage(submissionSchema, { ...sub, update: { kind: 'masked', tensors: (sub.update as { tensors: unknown }).tensors } }, 'submission'))).toMatch(
      / at update\.kind: /,
    );
    const badShape = { ...sub, update: { kind: 'plain', tensors: { manifest: [{ name: 'w', shape: [2, -2], dtype: 'float32' }], data: weights.data } } };
    expect(invalid(() => parseMessage(submissionSchema, badShape, 'submission'))).toMatch(/ at update\.tensors\.manifest\.0\.shape\.1: /);
  });
});

describe('joinAckSchema', () => {
  it('accepts both ack shapes and rejects an unknown error code', () => {
    expect(parseMessage(joinAckSchema, { ok: true, taskId: 't', clientId: 'c' }, 'ack')).toEqual({ ok: true, taskId: 't', clientId: 'c' });
    const rejected = { ok: false, error: { code: 'ERR_PROTOCOL_VERSION', message: 'v2 required' } };
    expect(parseMessage(joinAckSchema, rejected, 'ack')).toEqual(rejected);
    invalid(() => parseMessage(joinAckSchema, { ok: false, error: { code: 'ERR_MADE_UP', message: 'x' } }, 'ack'));
  });
});

describe('taskSpecSchema', () => {
  it('fills every default from an empty object', () => {
    expect(taskSpecSchema.parse({})).toEqual({
      name: 'task',
      model: { preset: 'mlp' },
      train: { epochs: 1, batchSize: 32, learningRate: 0.001, optimizer: 'adam', proximalMu: 0 },
      rounds: 3,
      clientsPerRound: 3,
      minClients: 2,
      roundDeadlineSeconds: 120,
      overSelection: 1,
      evaluateEvery: 1,
      waitForClientsSeconds: 600,
      strategy: { name: 'fedavg', options: {} },
      maxConsecutiveFailures: 5,
      he: false,
    });
  });

  it('fills nested train defaults when train is partly given', () => {
    expect(taskSpecSchema.parse({ train: { epochs: 4 } }).train).toEqual({ epochs: 4, batchSize: 32, learningRate: 0.001, optimizer: 'adam', proximalMu: 0 });
    expect(trainConfigSchema.parse({ optimizer: 'sgd', learningRate: 0.1 })).toMatchObject({ optimizer: 'sgd', learningRate: 0.1, epochs: 1 });
  });

  it('keeps given values', () => {
    const spec = taskSpecSchema.parse({ name: 'mnist', rounds: 10, clientsPerRound: 5, minClients: 5, strategy: { name: 'fedavg', options: { serverLearningRate: 0.5 } } });
    expect(spec).toMatchObject({ name: 'mnist', rounds: 10, clientsPerRound: 5, minClients: 5, strategy: { name: 'fedavg', options: { serverLearningRate: 0.5 } } });
  });

  it('refines minClients ≤ clientsPerRound (equality allowed)', () => {
    expect(taskSpecSchema.safeParse({ minClients: 3, clientsPerRound: 3 }).success).toBe(true);
    const r = taskSpecSchema.safeParse({ minClients: 4, clientsPerRound: 3 });
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => ({ path: i.path, message: i.message }))).toEqual([
      { path: ['minClients'], message: 'minClients (4) must be ≤ clientsPerRound (3)' },
    ]);
    // The defaults participate too: minClients 4 against the default clientsPerRound 3.
    expect(taskSpecSchema.safeParse({ minClients: 4 }).success).toBe(false);
    // And parseMessage reports it at its path.
    expect(invalid(() => parseMessage(taskSpecSchema, { minClients: 2, clientsPerRound: 1 }, 'task spec'))).toBe(
      'invalid task spec at minClients: minClients (2) must be ≤ clientsPerRound (1)',
    );
  });

  it('rejects out-of-range values', () => {
    expect(taskSpecSchema.safeParse({ rounds: 0 }).success).toBe(false);
    expect(taskSpecSchema.safeParse({ overSelection: 0.5 }).success).toBe(false);
    expect(taskSpecSchema.safeParse({ train: { optimizer: 'lbfgs' } }).success).toBe(false);
    expect(taskSpecSchema.safeParse({ model: { preset: 'transformer' } }).success).toBe(false);
  });
});
