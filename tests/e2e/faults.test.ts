import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeTensors, encodeTensors, flatten, type RoundStart } from '@tessera/protocol';
import { TokenAuthority, type TesseraServerApp } from '@tessera/server';
import { FakeClient, startServer, tinyTask, tmp } from '../helpers.js';

let server: TesseraServerApp | undefined;
const clients: FakeClient[] = [];
afterEach(async () => {
  clients.splice(0).forEach((c) => c.close());
  await server?.close();
  server = undefined;
});

async function connect(id: string, opts: { tasks?: string[]; role?: 'client' | 'admin' } = {}) {
  const token = await server!.tokens.issue({ role: opts.role ?? 'client', sub: id, ...(opts.tasks ? { tasks: opts.tasks } : {}) });
  const c = new FakeClient(server!.url, token);
  clients.push(c);
  return c;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('bad input and faults: each gets its code, is counted, and changes nothing', () => {
  it('rejects every malformed or misplaced submission and aggregates only the valid ones', async () => {
    server = await startServer();
    const taskId = await server.createTask(tinyTask({ rounds: 2, waitForClients: 2 }));
    const v0 = server.store.getCheckpoint(taskId, 0)!;
    const v0sha = sha(v0.data);
    const a = await connect('a');
    const b = await connect('b');
    expect(await a.join('a')).toMatchObject({ ok: true, taskId });
    expect(await b.join('b')).toMatchObject({ ok: true, taskId });
    await a.task();
    await b.task();
    const ra = await a.round();
    const rb = await b.round();
    expect(ra.roundId).toBe(1);
    expect(rb.modelVersion).toBe(0);

    // A third client joins after the cohort was drawn.
    const c = await connect('c');
    await c.join('c');
    await c.task();

    const expectCode = async (p: Promise<unknown>, code: string) => expect(await p).toEqual({ ok: false, error: { code, message: expect.any(String) } });
    const nTensors = ra.weights.manifest.length;
    const tensorsLike = (r: RoundStart, f: (shape: number[]) => number[] = (s) => s, fill = 0.5) =>
      encodeTensors(r.weights.manifest.map((m) => {
        const shape = f(m.shape);
        return { name: m.name, shape, values: new Float32Array(shape.reduce((x, y) => x * y, 1)).fill(fill) };
      }));

    await expectCode(a.submitRaw({ roundId: 1 }), 'ERR_INVALID_MESSAGE');
    await expectCode(a.submitRaw('not an object'), 'ERR_INVALID_MESSAGE');
    await expectCode(a.submit(ra, 0.5, { update: { kind: 'plain', tensors: encodeTensors([{ name: 'x', shape: [2], values: new Float32Array(2) }]) } }), 'ERR_TENSOR_MISMATCH');
    await expectCode(a.submit(ra, 0.5, { update: { kind: 'plain', tensors: tensorsLike(ra, (s) => [...s.slice(0, -1), s.at(-1)! + 1]) } }), 'ERR_TENSOR_MISMATCH');
    const wrongDtype = tensorsLike(ra);
    wrongDtype.manifest[0] = { ...wrongDtype.manifest[0]!, dtype: 'int32' as 'float32' };
    await expectCode(a.submit(ra, 0.5, { update: { kind: 'plain', tensors: wrongDtype } }), 'ERR_TENSOR_MISMATCH');
    await expectCode(a.submit(ra, (i) => (i === 3 ? NaN : 0.5)), 'ERR_NON_FINITE');
    await expectCode(a.submit(ra, (i) => (i === 0 ? Infinity : 0.5)), 'ERR_NON_FINITE');
    const huge = { manifest: ra.weights.manifest, data: new Uint8Array(server.runners.get(taskId)!.maxPayloadBytes + 4) };
    await expectCode(a.submit(ra, 0.5, { update: { kind: 'plain', tensors: huge } }), 'ERR_PAYLOAD_TOO_LARGE');
    await expectCode(a.submit(ra, 0.5, { roundId: 2 }), 'ERR_FUTURE_ROUND');
    await expectCode(a.submit(ra, 0.5, { baseModelVersion: 7 }), 'ERR_STALE_MODEL');
    await expectCode(a.submit(ra, 0.5, { taskId: 'task-other' }), 'ERR_UNKNOWN_TASK');
    await expectCode(a.submit(ra, 0.5, { numExamples: 1_000_000 }), 'ERR_INVALID_MESSAGE');
    await expectCode(c.submit(ra, 0.5), 'ERR_NOT_IN_COHORT');
    c.close(); // so that round 2's cohort is exactly {a, b}
    expect(nTensors).toBe(4);

    // Valid submissions: a's Δ = 0.5 everywhere (100 examples), b's Δ = i-dependent (300 examples).
    expect(await a.submit(ra, 0.5)).toEqual({ ok: true });
    await expectCode(a.submit(ra, 0.25), 'ERR_DUPLICATE_SUBMISSION');
    const bDelta = (i: number) => (i % 3) - 1;
    const bFlatWeights = flatten(decodeTensors(rb.weights));
    expect(await b.submit(rb, bDelta, { numExamples: 100 })).toEqual({ ok: true });
    const end = await a.roundEnd();
    expect(end).toMatchObject({ roundId: 1, status: 'completed', modelVersion: 1 });

    // The new global model is exactly w + mean(Δ) of the two valid updates: nothing rejected leaked in.
    const v1 = server.store.getCheckpoint(taskId, 1)!;
    const got = flatten(decodeTensors({ manifest: v1.manifest, data: v1.data }));
    let offset = 0;
    for (const m of rb.weights.manifest) {
      const n = m.shape.reduce((x, y) => x * y, 1);
      for (let i = 0; i < n; i++) {
        const j = offset + i;
        expect(got[j]).toBeCloseTo(bFlatWeights[j]! + (0.5 + bDelta(i)) / 2, 6);
      }
      offset += n;
    }
    // The initial checkpoint is byte-for-byte what it was.
    expect(sha(server.store.getCheckpoint(taskId, 0)!.data)).toBe(v0sha);

    // Round 2: an update for round 1 is now stale; an update for round 1's model version is stale too.
    const ra2 = await a.round();
    expect(ra2.roundId).toBe(2);
    await expectCode(a.submit(ra, 0.5), 'ERR_STALE_ROUND');
    await expectCode(a.submit(ra2, 0.5, { baseModelVersion: 0 }), 'ERR_STALE_MODEL');

    const counts = server.store.rejectionCounts(taskId);
    expect(counts).toMatchObject({
      ERR_INVALID_MESSAGE: 3,
      ERR_TENSOR_MISMATCH: 3,
      ERR_NON_FINITE: 2,
      ERR_PAYLOAD_TOO_LARGE: 1,
      ERR_FUTURE_ROUND: 1,
      ERR_STALE_MODEL: 2,
      ERR_UNKNOWN_TASK: 1,
      ERR_NOT_IN_COHORT: 1,
      ERR_DUPLICATE_SUBMISSION: 1,
      ERR_STALE_ROUND: 1,
    });
    const rounds = server.store.listRounds(taskId);
    expect(rounds[0]).toMatchObject({ roundId: 1, status: "completed", accepted: 2, rejected: 13 });
    // Admin REST shows the same counts.
    const admin = await server.tokens.issue({ role: 'admin', sub: 'ops' });
    const res = await fetch(`${server.url}/api/tasks/${taskId}`, { headers: { authorization: `Bearer ${admin}` } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { rejections: Record<string, number>; modelVersion: number };
    expect(body.rejections.ERR_NON_FINITE).toBe(2);
    expect(body.modelVersion).toBe(1);
  });

  it('refuses wrong protocol versions, foreign client ids, wrong scopes and roles at join', async () => {
    server = await startServer();
    const taskId = await server.createTask(tinyTask());
    const a = await connect('a');
    expect(await a.join('a', { protocolVersion: 999 })).toMatchObject({ ok: false, error: { code: 'ERR_PROTOCOL_VERSION' } });
    expect(await a.join('someone-else')).toMatchObject({ ok: false, error: { code: 'ERR_FORBIDDEN' } });
    expect(await a.join('a', { numTrainExamples: -1 })).toMatchObject({ ok: false, error: { code: 'ERR_INVALID_MESSAGE' } });
    const scoped = await connect('s', { tasks: ['task-nope'] });
    expect(await scoped.join('s', { taskId })).toMatchObject({ ok: false, error: { code: 'ERR_FORBIDDEN' } });
    expect(await scoped.join('s')).toMatchObject({ ok: false, error: { code: 'ERR_UNKNOWN_TASK' } });
    const submitFirst = await connect('early');
    expect(await submitFirst.submitRaw({})).toMatchObject({ ok: false, error: { code: 'ERR_INVALID_MESSAGE' } });
    expect(server.store.rejectionCounts(taskId)).toEqual({});
    expect(server.rejectionCounts.get('ERR_FORBIDDEN')).toBe(2);
    expect(server.rejectionCounts.get('ERR_PROTOCOL_VERSION')).toBe(1);
  });

  it('refuses missing, expired, forged and wrong-role tokens on sockets and REST', async () => {
    server = await startServer();
    const taskId = await server.createTask(tinyTask());
    const none = new FakeClient(server.url, undefined);
    clients.push(none);
    expect((await none.connectError).data?.code).toBe('ERR_UNAUTHORIZED');
    const expired = await server.tokens.issue({ role: 'client', sub: 'x', ttl: 1 });
    await new Promise((r) => setTimeout(r, 2100));
    const e = new FakeClient(server.url, expired);
    clients.push(e);
    expect((await e.connectError).data?.code).toBe('ERR_TOKEN_EXPIRED');
    const otherAuthority = await TokenAuthority.open(tmp());
    const forged = new FakeClient(server.url, await otherAuthority.issue({ role: 'client', sub: 'x' }));
    clients.push(forged);
    expect((await forged.connectError).data?.code).toBe('ERR_UNAUTHORIZED');
    const good = await server.tokens.issue({ role: 'client', sub: 'x' });
    const [h, p, s] = good.split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
    const tampered = [h, Buffer.from(JSON.stringify({ ...payload, role: 'admin' })).toString('base64url'), s].join('.');
    const t = new FakeClient(server.url, tampered);
    clients.push(t);
    expect((await t.connectError).data?.code).toBe('ERR_UNAUTHORIZED');
    const adminOnSocket = await connect('ops', { role: 'admin' });
    expect((await adminOnSocket.connectError).data?.code).toBe('ERR_FORBIDDEN');

    const get = (path: string, token?: string) => fetch(`${server!.url}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    expect((await get('/api/tasks')).status).toBe(401);
    expect(((await (await get('/api/tasks')).json()) as { error: { code: string } }).error.code).toBe('ERR_UNAUTHORIZED');
    expect((await get('/api/tasks', good)).status).toBe(403);
    expect((await get('/api/tasks', tampered)).status).toBe(401);
    expect((await get('/api/tasks', expired)).status).toBe(401);
    const admin = await server.tokens.issue({ role: 'admin', sub: 'ops' });
    const list = (await (await get('/api/tasks', admin)).json()) as { id: string }[];
    expect(list.map((x) => x.id)).toEqual([taskId]);
    expect((await get('/healthz')).status).toBe(200);
    const bad = await fetch(`${server.url}/api/tasks`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ rounds: -1 }) });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('ERR_INVALID_CONFIG');
  });

  it('does not let a disconnect or a straggler stall a round beyond its deadline; too few valid updates fail the round and keep the model', async () => {
    server = await startServer();
    const taskId = await server.createTask(tinyTask({ rounds: 2, clientsPerRound: 3, minClients: 2, waitForClients: 3, waitForClientsSeconds: 1, roundDeadlineSeconds: 2 }));
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((id) => connect(id)));
    for (const [cl, id] of [[a, 'a'], [b, 'b'], [c, 'c']] as const) await cl!.join(id);
    const [ra, rb] = await Promise.all([a!.round(), b!.round(), c!.round()]);
    // c drops out mid-round; a and b submit: the round completes without waiting for the deadline.
    c!.close();
    const t0 = Date.now();
    await a!.submit(ra!, 0.1);
    await b!.submit(rb!, 0.1);
    expect(await a!.roundEnd()).toMatchObject({ roundId: 1, status: 'completed', modelVersion: 1 });
    expect(Date.now() - t0).toBeLessThan(1500);
    // Round 2 waits for three clients up to waitForClientsSeconds (1 s), then goes with the two left.
    // Only a submits; b straggles: the round fails at its deadline and the model stays at v1.
    const ra2 = await a!.round();
    await a!.submit(ra2, 0.1);
    const t1 = Date.now();
    const end2 = await a!.roundEnd(5000);
    expect(end2).toMatchObject({ roundId: 2, status: 'failed', modelVersion: 1 });
    expect(Date.now() - t1).toBeLessThan(2600);
    expect(server.store.getTask(taskId)!.modelVersion).toBe(1);
    expect(server.store.listCheckpoints(taskId).map((x) => x.version)).toEqual([0, 1]);
    expect(server.store.listRounds(taskId).map((r) => r.status)).toEqual(['completed', 'failed']);
  });
});
