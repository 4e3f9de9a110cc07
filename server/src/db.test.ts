import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeTensors, type TensorSpec } from '@tessera/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Checkpoint, Store } from './db.js';

const TOPOLOGY = '{"class_name":"Sequential"}';

function checkpoint(taskId: string, version: number, roundId: number | null, values: number[]): Checkpoint {
  const enc = encodeTensors([{ name: 'w', shape: [values.length], values: Float32Array.from(values) }]);
  return { taskId, version, roundId, manifest: enc.manifest, data: enc.data };
}

const manifest3: TensorSpec[] = [{ name: 'w', shape: [3], dtype: 'float32' }];

let dir: string;
let store: Store;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-db-test-'));
  store = new Store(join(dir, 'data'));
});

afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

function newTask(id = 't1') {
  store.createTask({ id, name: `task ${id}`, spec: { rounds: 3, clientsPerRound: 2 }, topology: TOPOLOGY }, checkpoint(id, 0, null, [1, 2, 3]));
}

describe('Store', () => {
  it('createTask stores the task and its initial checkpoint (round trip)', () => {
    const before = Date.now();
    newTask();
    const t = store.getTask('t1');
    expect(t).toMatchObject({ id: 't1', name: 'task t1', status: 'running', modelVersion: 0, completedRounds: 0, reason: null });
    expect(JSON.parse(t!.spec)).toEqual({ rounds: 3, clientsPerRound: 2 });
    expect(t!.createdAt).toBeGreaterThanOrEqual(before);
    expect(store.getTopology('t1')).toBe(TOPOLOGY);
    expect(store.getTask('nope')).toBeUndefined();
    expect(() => store.getTopology('nope')).toThrow(/no task nope/);

    const c = store.getCheckpoint('t1', 0)!;
    expect(c.taskId).toBe('t1');
    expect(c.version).toBe(0);
    expect(c.roundId).toBeNull();
    expect(c.manifest).toEqual(manifest3);
    expect([...new Float32Array(Uint8Array.from(c.data).buffer)]).toEqual([1, 2, 3]);
    expect(store.getCheckpoint('t1', 1)).toBeUndefined();

    const [listed] = store.listCheckpoints('t1');
    expect(listed).toMatchObject({ version: 0, roundId: null });
    expect(listed!.sha256).toBe(createHash('sha256').update(checkpoint('t1', 0, null, [1, 2, 3]).data).digest('hex'));
  });

  it('createTask is one transaction: a failing checkpoint insert leaves no task behind', () => {
    newTask('t1');
    // The initial checkpoint collides with t1's (same primary key): the task row must roll back too.
    expect(() => store.createTask({ id: 't2', name: 'x', spec: {}, topology: TOPOLOGY }, checkpoint('t1', 0, null, [9]))).toThrow();
    expect(store.getTask('t2')).toBeUndefined();
    expect(store.listTasks().map((t) => t.id)).toEqual(['t1']);
    // The store is usable afterwards (no transaction left open).
    newTask('t3');
    expect(store.listTasks().map((t) => t.id)).toEqual(['t1', 't3']);
  });

  it('completeRound moves checkpoint, round and task together', () => {
    newTask();
    store.upsertClient({ id: 'a', platform: 'node', backend: 'cpu', numTrain: 10, numTest: 2 });
    store.upsertClient({ id: 'b', platform: 'browser', backend: 'webgl', numTrain: 20, numTest: 4 });
    expect(store.lastRoundId('t1')).toBe(0);
    store.startRound('t1', 1, 0, ['a', 'b']);
    expect(store.lastRoundId('t1')).toBe(1);
    store.countRoundSubmission('t1', 1, true);
    store.countRoundSubmission('t1', 1, false);

    store.completeRound({ ...checkpoint('t1', 1, 1, [4, 5, 6]), roundId: 1 }, { train_loss: 0.25, clients: 1 }, ['a']);

    expect(store.getTask('t1')).toMatchObject({ modelVersion: 1, completedRounds: 1, status: 'running' });
    const [r] = store.listRounds('t1');
    expect(r).toMatchObject({ taskId: 't1', roundId: 1, status: 'completed', modelVersion: 0, cohort: ['a', 'b'], accepted: 1, rejected: 1, trainMetrics: { train_loss: 0.25, clients: 1 }, evalMetrics: null });
    expect(r!.endedAt).not.toBeNull();
    const c = store.getCheckpoint('t1', 1)!;
    expect(c.roundId).toBe(1);
    expect([...new Float32Array(Uint8Array.from(c.data).buffer)]).toEqual([4, 5, 6]);
    expect(store.listCheckpoints('t1').map((x) => x.version)).toEqual([0, 1]);
    const contributed = Object.fromEntries(store.listClients().map((row) => [row.id, row.rounds_contributed]));
    expect(contributed).toEqual({ a: 1, b: 0 });
  });

  it('completeRound is atomic: if the checkpoint cannot be written, neither round nor task moves', () => {
    newTask();
    store.startRound('t1', 1, 0, ['a']);
    // Version 0 already exists: the insert fails inside the transaction.
    expect(() => store.completeRound({ ...checkpoint('t1', 0, 1, [7, 7, 7]), roundId: 1 }, { x: 1 }, [])).toThrow();
    expect(store.getTask('t1')).toMatchObject({ modelVersion: 0, completedRounds: 0 });
    expect(store.listRounds('t1')[0]).toMatchObject({ status: 'training', trainMetrics: null, endedAt: null });
    expect([...new Float32Array(Uint8Array.from(store.getCheckpoint('t1', 0)!.data).buffer)]).toEqual([1, 2, 3]);
  });

  it("markInterrupted turns this task's 'training' (and 'aggregating') rounds into 'interrupted', nothing else", () => {
    newTask('t1');
    newTask('t2');
    store.startRound('t1', 1, 0, ['a']);
    store.completeRound({ ...checkpoint('t1', 1, 1, [0, 0, 0]), roundId: 1 }, {}, []);
    store.startRound('t1', 2, 1, ['a']);
    store.startRound('t1', 3, 1, ['a']);
    store.setRoundStatus('t1', 3, 'aggregating');
    store.startRound('t1', 4, 1, ['a']);
    store.failRound('t1', 4, 'too few clients');
    store.startRound('t2', 1, 0, ['b']);

    expect(store.markInterrupted('t1')).toBe(2);

    expect(store.listRounds('t1').map((r) => [r.roundId, r.status, r.reason])).toEqual([
      [1, 'completed', null],
      [2, 'interrupted', 'server restarted'],
      [3, 'interrupted', 'server restarted'],
      [4, 'failed', 'too few clients'],
    ]);
    expect(store.listRounds('t1')[1]!.endedAt).not.toBeNull();
    expect(store.listRounds('t2').map((r) => r.status)).toEqual(['training']);
    expect(store.markInterrupted('t1')).toBe(0);
  });

  it('a checkpoint whose BLOB was tampered with fails its checksum on read', () => {
    newTask();
    const tampered = Uint8Array.from(checkpoint('t1', 0, null, [1, 2, 3]).data);
    tampered[0]! ^= 0x01;
    store.db.prepare('UPDATE checkpoints SET data = ? WHERE task_id = ? AND version = ?').run(tampered, 't1', 0);
    expect(() => store.getCheckpoint('t1', 0)).toThrow('checkpoint t1@0 fails its checksum');
  });

  it('reopening the store in the same directory keeps everything', () => {
    newTask();
    store.upsertClient({ id: 'a', platform: 'node', backend: 'cpu', numTrain: 10, numTest: 2 });
    store.startRound('t1', 1, 0, ['a']);
    store.completeRound({ ...checkpoint('t1', 1, 1, [4, 5, 6]), roundId: 1 }, { train_loss: 0.5 }, ['a']);
    store.setRoundEval('t1', 1, { accuracy: 0.75 });
    store.startRound('t1', 2, 1, ['a']);
    store.setTaskStatus('t1', 'paused', 'operator');
    store.recordRejection({ taskId: 't1', roundId: 2, clientId: 'a', code: 'ERR_NORM_BOUND', message: 'too large' });
    store.audit('admin', 'pause', 't1', { why: 'test' });
    store.close();

    store = new Store(join(dir, 'data'));
    expect(store.getTask('t1')).toMatchObject({ status: 'paused', reason: 'operator', modelVersion: 1, completedRounds: 1 });
    expect(store.getTopology('t1')).toBe(TOPOLOGY);
    expect([...new Float32Array(Uint8Array.from(store.getCheckpoint('t1', 1)!.data).buffer)]).toEqual([4, 5, 6]);
    expect(store.listRounds('t1').map((r) => [r.roundId, r.status, r.trainMetrics, r.evalMetrics])).toEqual([
      [1, 'completed', { train_loss: 0.5 }, { accuracy: 0.75 }],
      [2, 'training', null, null],
    ]);
    expect(store.lastRoundId('t1')).toBe(2);
    // A restart marks the round left open as interrupted.
    expect(store.markInterrupted('t1')).toBe(1);
    expect(store.listClients().map((c) => [c.id, c.rounds_contributed])).toEqual([['a', 1]]);
    expect(store.rejectionCounts('t1')).toEqual({ ERR_NORM_BOUND: 1 });
    expect(store.rejectionCounts('other')).toEqual({});
    expect(store.listAudit().map((a) => [a.actor, a.action, a.target, a.details])).toEqual([['admin', 'pause', 't1', '{"why":"test"}']]);
  });
});
