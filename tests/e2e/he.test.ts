import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  decodeTensors,
  flatten,
  generateSigningKey,
  HeEncryptor,
  joinChunks,
  signReceipt,
  type RoundStart,
  type SigningKey,
  type TaskAssignment,
} from '@tessera/protocol';
import { KeyHolder } from '@tessera/client-node';
import type { TesseraServerApp } from '@tessera/server';
import { FakeClient, startServer, tinyTask, tmp } from '../helpers.js';

const BIN = fileURLToPath(new URL('../../cli/dist/bin.js', import.meta.url));
let server: TesseraServerApp | undefined;
const closers: (() => void)[] = [];
afterEach(async () => {
  closers.splice(0).forEach((c) => c());
  await server?.close();
  server = undefined;
});

async function keyholder(s: TesseraServerApp, taskId: string, minClients: number) {
  const kh = await KeyHolder.open({ keysDir: tmp('tessera-kh-'), minClients });
  closers.push(() => kh.close());
  await kh.connect(s.url, await s.tokens.issue({ role: 'keyholder', sub: 'kh', tasks: [taskId] }), { reconnectionAttempts: 0 });
  return kh;
}

/** A client that encrypts exactly the delta the test gives it. */
async function heClient(s: TesseraServerApp, id: string, pinned: KeyHolder['signingJwk']) {
  const key: SigningKey = await generateSigningKey();
  const c = new FakeClient(s.url, await s.tokens.issue({ role: 'client', sub: id }));
  closers.push(() => c.close());
  expect(await c.join(id, { receiptKey: key.jwk, numTrainExamples: 1000 })).toMatchObject({ ok: true });
  let task: TaskAssignment = await c.task();
  while (!task.he) task = await c.task();
  const enc = await HeEncryptor.create(task.he, pinned);
  closers.push(() => enc.dispose());
  const submit = async (round: RoundStart, delta: Float32Array, weight: number, corrupt = false) => {
    const cts = enc.encrypt(delta, weight);
    if (corrupt) cts[1] = new Uint8Array(cts[1]!.byteLength).fill(7);
    const receipt = await signReceipt(key, { taskId: round.taskId, roundId: round.roundId, clientId: id }, cts);
    return c.submitRaw({ taskId: round.taskId, roundId: round.roundId, baseModelVersion: round.modelVersion, numExamples: 1, metrics: {}, update: { kind: 'ckks', ciphertexts: joinChunks(cts), receipt } });
  };
  return { c, submit, key };
}

function randomDelta(n: number, seed: number): Float32Array {
  const d = new Float32Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    d[i] = (x / 2147483648 - 0.5) * 0.02;
  }
  return d;
}

describe('homomorphic encryption with a separate key holder', () => {
  it('the decrypted aggregate of 10 encrypted mlp updates equals plaintext FedAvg within 1e-6', async () => {
    server = await startServer();
    const taskId = await server.createTask({ name: 'he', model: { preset: 'mlp' }, he: true, rounds: 1, clientsPerRound: 10, minClients: 10, waitForClients: 10, roundDeadlineSeconds: 60, evaluateEvery: 0 });
    const kh = await keyholder(server, taskId, 10);
    const clients = [];
    for (let i = 0; i < 10; i++) clients.push(await heClient(server, `c${i}`, kh.signingJwk));
    const rounds = await Promise.all(clients.map((x) => x.c.round()));
    const global = flatten(decodeTensors(rounds[0]!.weights));
    const n = global.length;
    expect(n).toBe(101_770);
    const deltas = clients.map((_, i) => randomDelta(n, i + 1));
    const weights = clients.map((_, i) => 100 + 37 * i);
    const acks = await Promise.all(clients.map((x, i) => x.submit(rounds[i]!, deltas[i]!, weights[i]!)));
    expect(acks.every((a) => (a as { ok: boolean }).ok)).toBe(true);
    expect(await clients[0]!.c.roundEnd(30_000)).toMatchObject({ status: 'completed', modelVersion: 1 });
    const v1 = server.store.getCheckpoint(taskId, 1)!;
    const got = flatten(decodeTensors({ manifest: v1.manifest, data: v1.data }));
    const total = weights.reduce((a, b) => a + b, 0);
    let maxErr = 0;
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let i = 0; i < 10; i++) s += weights[i]! * deltas[i]![j]!;
      const expected = Math.fround(global[j]! + s / total);
      maxErr = Math.max(maxErr, Math.abs(got[j]! - expected));
    }
    expect(maxErr).toBeLessThan(1e-6);
    expect(maxErr).toBeGreaterThanOrEqual(0);
  }, 120_000);

  it('rejects a ciphertext that does not load, and a forged receipt; the sum is untouched', async () => {
    server = await startServer();
    const taskId = await server.createTask(tinyTask({ he: true, rounds: 1, waitForClients: 2 }));
    const kh = await keyholder(server, taskId, 2);
    const a = await heClient(server, 'a', kh.signingJwk);
    const b = await heClient(server, 'b', kh.signingJwk);
    const [ra, rb] = await Promise.all([a.c.round(), b.c.round()]);
    const n = 23;
    // The tiny model has 23 parameters + 1 weight slot: one ciphertext, so corrupt a different way.
    const bad = await a.c.submitRaw({ taskId, roundId: ra.roundId, baseModelVersion: 0, numExamples: 1, metrics: {}, update: { kind: 'ckks', ciphertexts: joinChunks([new Uint8Array(5000).fill(3)]), receipt: await signReceipt(a.key, { taskId, roundId: ra.roundId, clientId: 'a' }, [new Uint8Array(5000).fill(3)]) } });
    expect(bad).toMatchObject({ ok: false, error: { code: 'ERR_CIPHERTEXT' } });
    const other = await generateSigningKey();
    const forged = await a.c.submitRaw({ taskId, roundId: ra.roundId, baseModelVersion: 0, numExamples: 1, metrics: {}, update: { kind: 'ckks', ciphertexts: joinChunks([new Uint8Array(10)]), receipt: await signReceipt(other, { taskId, roundId: ra.roundId, clientId: 'a' }, [new Uint8Array(10)]) } });
    expect(forged).toMatchObject({ ok: false, error: { code: 'ERR_RECEIPT' } });
    const plain = await a.c.submit(ra, 0.1);
    expect(plain).toMatchObject({ ok: false, error: { code: 'ERR_INVALID_MESSAGE' } });
    expect(await a.submit(ra, new Float32Array(n).fill(0.5), 3)).toEqual({ ok: true });
    expect(await b.submit(rb, new Float32Array(n).fill(-0.25), 1)).toEqual({ ok: true });
    await a.c.roundEnd(20_000);
    const w0 = flatten(decodeTensors(ra.weights));
    const v1 = server.store.getCheckpoint(taskId, 1)!;
    const got = flatten(decodeTensors({ manifest: v1.manifest, data: v1.data }));
    for (let j = 0; j < n; j++) expect(got[j]).toBeCloseTo(w0[j]! + (3 * 0.5 - 0.25) / 4, 6);
    expect(server.store.rejectionCounts(taskId)).toMatchObject({ ERR_CIPHERTEXT: 1, ERR_RECEIPT: 1, ERR_INVALID_MESSAGE: 1 });
  }, 90_000);

  it('with the key holder offline the round waits until its deadline, then fails and keeps the model', async () => {
    server = await startServer();
    const taskId = await server.createTask(tinyTask({ he: true, rounds: 1, waitForClients: 2, roundDeadlineSeconds: 2, maxConsecutiveFailures: 1 }));
    const kh = await keyholder(server, taskId, 2);
    const a = await heClient(server, 'a', kh.signingJwk);
    const b = await heClient(server, 'b', kh.signingJwk);
    const [ra, rb] = await Promise.all([a.c.round(), b.c.round()]);
    kh.close();
    const t0 = Date.now();
    await a.submit(ra, new Float32Array(23).fill(0.5), 1);
    await b.submit(rb, new Float32Array(23).fill(0.5), 1);
    expect(await a.c.roundEnd(10_000)).toMatchObject({ status: 'failed', modelVersion: 0 });
    expect(Date.now() - t0).toBeGreaterThan(1000);
    expect(server.store.listCheckpoints(taskId).map((c) => c.version)).toEqual([0]);
  }, 90_000);

  it('the key holder decrypts a round at most once and only with enough valid receipts', async () => {
    server = await startServer();
    const taskId = await server.createTask(tinyTask({ he: true, waitForClients: 2 }));
    const kh = await keyholder(server, taskId, 2);
    const a = await heClient(server, 'a', kh.signingJwk);
    const enc = await HeEncryptor.create((await kh.publication()), kh.signingJwk);
    closers.push(() => enc.dispose());
    const cts = enc.encrypt(new Float32Array(23).fill(1), 2);
    const receipt = await signReceipt(a.key, { taskId, roundId: 7, clientId: 'a' }, cts);
    const req = { taskId, roundId: 7, length: 23, aggregate: cts, receipts: [{ clientId: 'a', receiptKey: a.key.jwk, receipt }] };
    await expect(kh.decrypt(req)).rejects.toMatchObject({ code: 'ERR_RECEIPT' }); // one receipt, two required
    // The same receipt twice, or a receipt for another round, does not count as a second client.
    await expect(kh.decrypt({ ...req, receipts: [req.receipts[0]!, { ...req.receipts[0]!, clientId: 'b' }] })).rejects.toMatchObject({ code: 'ERR_RECEIPT' });
    const b = await generateSigningKey();
    const ok = { ...req, receipts: [...req.receipts, { clientId: 'b', receiptKey: b.jwk, receipt: await signReceipt(b, { taskId, roundId: 7, clientId: 'b' }, cts) }] };
    const r = await kh.decrypt(ok);
    expect(r.weight).toBe(2);
    expect(r.values[0]).toBeCloseTo(2, 6);
    await expect(kh.decrypt(ok)).rejects.toMatchObject({ code: 'ERR_REPLAY' });
  }, 90_000);

  it('clients refuse to encrypt under a key that is not the pinned key holder key', async () => {
    server = await startServer();
    const taskId = await server.createTask(tinyTask({ he: true, waitForClients: 1, minClients: 1, clientsPerRound: 1 }));
    const kh = await keyholder(server, taskId, 1);
    const pub = await kh.publication();
    const impostor = await generateSigningKey();
    await expect(HeEncryptor.create(pub, impostor.jwk)).rejects.toMatchObject({ code: 'ERR_KEY' });
    await expect(HeEncryptor.create({ ...pub, keyholderJwk: impostor.jwk }, impostor.jwk)).rejects.toMatchObject({ code: 'ERR_KEY' });
    const swapped = new Uint8Array(pub.publicKey);
    swapped[100] = swapped[100]! ^ 1;
    await expect(HeEncryptor.create({ ...pub, publicKey: swapped }, kh.signingJwk)).rejects.toMatchObject({ code: 'ERR_KEY' });
    await expect(HeEncryptor.create({ ...pub, params: { ...pub.params, scaleBits: 30 } }, kh.signingJwk)).rejects.toMatchObject({ code: 'ERR_KEY' });
    await expect(HeEncryptor.create(pub, undefined)).rejects.toMatchObject({ code: 'ERR_KEY' });
  }, 90_000);

  it('the server process never holds the secret key: key holder as its own process', async () => {
    const dataDir = tmp();
    server = await startServer({ dataDir });
    const taskId = await server.createTask(tinyTask({ he: true, rounds: 1, waitForClients: 2 }));
    const keysDir = tmp('tessera-kh-');
    const token = await server.tokens.issue({ role: 'keyholder', sub: 'kh', tasks: [taskId] });
    const proc: ChildProcess = spawn(process.execPath, [BIN, 'keyholder', '--server', server.url, '--token', token, '--keys', keysDir, '--min-clients', '2'], { stdio: 'ignore' });
    closers.push(() => proc.kill('SIGKILL'));
    const pinned = await (async () => {
      for (let i = 0; i < 300; i++) {
        try {
          return JSON.parse(readFileSync(join(keysDir, 'keyholder-jws.pub.jwk.json'), 'utf8')) as KeyHolder['signingJwk'];
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      throw new Error('key holder did not start');
    })();
    const a = await heClient(server, 'a', pinned);
    const b = await heClient(server, 'b', pinned);
    const [ra, rb] = await Promise.all([a.c.round(), b.c.round()]);
    await a.submit(ra, new Float32Array(23).fill(0.5), 1);
    await b.submit(rb, new Float32Array(23).fill(0.5), 1);
    expect(await a.c.roundEnd(20_000)).toMatchObject({ status: 'completed' });
    expect(statSync(join(keysDir, 'ckks-secret.key')).mode & 0o777).toBe(0o600);
    const secret = readFileSync(join(keysDir, 'ckks-secret.key'));
    const probe = secret.subarray(secret.length - 64); // 64 bytes of key material
    const files = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));
    for (const f of files(dataDir)) expect(readFileSync(f).includes(probe), f).toBe(false);
    const admin = await server.tokens.issue({ role: 'admin', sub: 'ops' });
    for (const path of ['/api/tasks', `/api/tasks/${taskId}`, `/api/tasks/${taskId}/rounds`, '/api/clients', '/api/audit']) {
      const body = Buffer.from(await (await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${admin}` } })).arrayBuffer());
      expect(body.includes(probe.toString('base64').slice(0, 40)), path).toBe(false);
    }
    // The server's HE state has a public key and no secret key.
    expect(server.store.getHePublication(taskId)?.publicKey.byteLength).toBeGreaterThan(1000);
  }, 60_000);
});
