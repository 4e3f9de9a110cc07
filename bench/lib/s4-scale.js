// Section 4: one server process (`tessera server`, a child process so its RSS is its own) with N
// concurrent socket.io clients simulated in worker threads. Measures round wall time (server's
// round started → round completed), server RSS, and submissions accepted / rejected / lost.
import { spawn } from 'node:child_process';
import { closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { Buffer } from 'node:buffer';
import { createInterface } from 'node:readline';
import { clearInterval, setInterval } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { defineModel, TokenAuthority } from '@tessera/server';
import { BENCH_DIR, REPO_DIR, fmt, int, openFileLimits, progress, rssMiB, table } from './util.js';

/** A free TCP port on 127.0.0.1 (listen on 0, read it, close). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Follows a growing file, calling onLine for each complete line. The server writes its log to a
 * file rather than a pipe: Node's stdout writes to a pipe are synchronous on Linux, so a bench
 * process slow to read would block the server it measures.
 */
function tailFile(path, onLine) {
  const fd = openSync(path, 'r');
  const buf = Buffer.alloc(1 << 20);
  let pos = 0;
  let rest = '';
  const poll = () => {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n <= 0) break;
      pos += n;
      const parts = (rest + buf.toString('utf8', 0, n)).split('\n');
      rest = parts.pop();
      for (const l of parts) onLine(l);
    }
  };
  const timer = setInterval(poll, 100);
  return () => {
    clearInterval(timer);
    poll();
    closeSync(fd);
  };
}

/** A 784 → 10 softmax layer (7,850 params): the model only has to travel, not to learn. */
async function tinyTopology() {
  await defineModel({ preset: 'mlp' }); // puts the server-side tfjs on its quiet cpu backend first
  const m = tf.sequential({ name: 'bench_tiny', layers: [tf.layers.dense({ inputShape: [784], units: 10, activation: 'softmax', name: 'out' })] });
  const topology = JSON.parse(m.toJSON(undefined, true));
  m.dispose();
  return topology;
}

/** Sums the workers' counters. */
function mergeStats(list) {
  const out = {};
  for (const s of list) {
    for (const [k, v] of Object.entries(s)) {
      if (typeof v === 'number') out[k] = k.startsWith('max') ? Math.max(out[k] ?? 0, v) : (out[k] ?? 0) + v;
      else if (v && typeof v === 'object') {
        out[k] ??= {};
        for (const [kk, vv] of Object.entries(v)) {
          if (k.startsWith('first')) out[k][kk] = Math.min(out[k][kk] ?? Infinity, vv);
          else if (k.startsWith('last')) out[k][kk] = Math.max(out[k][kk] ?? 0, vv);
          else out[k][kk] = (out[k][kk] ?? 0) + vv;
        }
      }
    }
  }
  return out;
}

const sumValues = (o) => Object.values(o ?? {}).reduce((a, b) => a + b, 0);
const describe = (o) =>
  Object.entries(o ?? {})
    .map(([k, v]) => `${k}×${v}`)
    .join(', ');

async function runOne(n, { rounds, deadline, topology, tmpRoot }) {
  const dataDir = mkdtempSync(join(tmpRoot, `scale-${n}-`));
  const taskFile = join(dataDir, 'task.json');
  mkdirSync(dataDir, { recursive: true });
  const minClients = Math.ceil(0.9 * n);
  writeFileSync(
    taskFile,
    JSON.stringify({
      name: `bench-scale-${n}`,
      model: { topology },
      rounds,
      clientsPerRound: n,
      minClients,
      waitForClients: n,
      waitForClientsSeconds: 180,
      roundDeadlineSeconds: deadline,
      evaluateEvery: 0,
      train: { epochs: 1, batchSize: 32, learningRate: 0.001, optimizer: 'sgd' },
    }),
  );
  const port = await freePort();
  const row = { clients: n, rounds, minClients, port, roundsCompleted: 0, roundsFailed: 0, roundSeconds: [], failReasons: [] };
  const logFile = join(dataDir, 'server.log');
  const logFd = openSync(logFile, 'w');
  // TESSERA_BENCH_SERVER_NODE_ARGS: extra Node flags for the server, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  const nodeArgs = process.env.TESSERA_BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...nodeArgs, join(REPO_DIR, 'cli/dist/bin.js'), 'server', '--port', String(port), '--data', dataDir, '--task', taskFile], {
    cwd: REPO_DIR,
    env: { ...process.env, TESSERA_LOG_FORMAT: 'json' },
    stdio: ['ignore', logFd, 'pipe'],
  });
  closeSync(logFd);
  const serverLog = { rejections: {}, started: {}, ended: {}, lines: 0, stderr: [] };
  let taskId;
  let taskEnd;
  let listening;
  const ready = new Promise((resolve) => (listening = resolve));
  const ended = new Promise((resolve) => (taskEnd = resolve));
  let exited = false;
  const exitP = new Promise((resolve) =>
    child.on('exit', (code, sig) => {
      exited = true;
      row.serverExit = sig ?? code;
      listening(false);
      taskEnd('server exited');
      resolve();
    }),
  );
  createInterface({ input: child.stderr }).on('line', (l) => serverLog.stderr.push(l) > 20 && serverLog.stderr.shift());
  const stopTail = tailFile(logFile, (l) => {
    serverLog.lines++;
    if (!l.startsWith('{')) return;
    let e;
    try {
      e = JSON.parse(l);
    } catch {
      return;
    }
    const msg = String(e.msg ?? '');
    const at = Date.parse(e.time);
    let m;
    if (msg.startsWith('listening on')) listening(true);
    else if ((m = /^task (\S+) created/.exec(msg))) taskId = m[1];
    else if ((m = /^round (\d+) started/.exec(msg))) {
      serverLog.started[m[1]] = at;
      // waitForClients = N: the first round starts once every client has joined.
      if (m[1] === '1') row.rssJoinedMiB = rssMiB(child.pid);
    }
    else if ((m = /^round (\d+) completed/.exec(msg))) {
      serverLog.ended[m[1]] = at;
      row.roundsCompleted++;
      row.roundSeconds.push((at - serverLog.started[m[1]]) / 1000);
      row.accepted = (row.accepted ?? 0) + (e.accepted ?? 0);
      row.failures = (row.failures ?? 0) + (e.failures ?? 0);
    } else if ((m = /^round (\d+) failed: (.*)$/.exec(msg))) {
      serverLog.ended[m[1]] = at;
      row.roundsFailed++;
      row.roundSeconds.push((at - serverLog.started[m[1]]) / 1000);
      row.failReasons.push(m[2]);
    } else if ((m = /^rejected (\S+)/.exec(msg))) serverLog.rejections[m[1]] = (serverLog.rejections[m[1]] ?? 0) + 1;
    else if ((m = /^task \S+ (done|failed|stopped)/.exec(msg))) taskEnd(m[1]);
  });

  let peak = 0;
  const sampler = setInterval(() => {
    const r = rssMiB(child.pid);
    if (r !== undefined) peak = Math.max(peak, r);
  }, 100);
  // External probe of the server's event loop: GET /healthz every 500 ms, slowest answer kept.
  row.maxHealthzMs = 0;
  let probing = false;
  const prober = setInterval(async () => {
    if (probing || !taskId) return;
    probing = true;
    const t = performance.now();
    try {
      await globalThis.fetch(`http://127.0.0.1:${port}/healthz`, { signal: globalThis.AbortSignal.timeout(60_000) });
    } catch {
      /* counted as its duration */
    }
    row.maxHealthzMs = Math.max(row.maxHealthzMs, performance.now() - t);
    probing = false;
  }, 500);
  const workers = [];
  try {
    if (!(await Promise.race([ready, sleep(60_000).then(() => false)]))) throw new Error(`server did not start: ${serverLog.stderr.slice(-3).join(' | ')}`);
    await sleep(300);
    row.rssIdleMiB = rssMiB(child.pid);
    peak = row.rssIdleMiB ?? 0;

    progress(`  [4] N=${n}: server pid ${child.pid} on port ${port}, RSS ${fmt(row.rssIdleMiB, 0)} MiB idle; issuing ${n} tokens`);
    const tokens = await TokenAuthority.open(dataDir);
    const clients = [];
    for (let i = 0; i < n; i++) clients.push({ id: `sim-${i}`, token: await tokens.issue({ role: 'client', sub: `sim-${i}`, ttl: '2h' }) });

    const nWorkers = Math.max(1, Math.min(os.cpus().length, Math.ceil(n / 250)));
    const perWorker = Math.ceil(n / nWorkers);
    const latest = [];
    const finals = [];
    const connectStarted = Date.now();
    for (let w = 0; w < nWorkers; w++) {
      const slice = clients.slice(w * perWorker, (w + 1) * perWorker);
      const worker = new Worker(join(BENCH_DIR, 'lib/scale-worker.js'), {
        workerData: { url: `http://127.0.0.1:${port}`, clients: slice, connectConcurrency: 32, ackTimeoutMs: (deadline + 30) * 1000 },
      });
      worker.on('message', (m) => {
        if (m.type === 'final') finals[w] = m.stats;
        else latest[w] = m.stats;
      });
      worker.on('error', (e) => row.failReasons.push(`worker ${w}: ${e.message}`));
      workers.push(worker);
    }
    progress(`  [4] N=${n}: ${nWorkers} worker thread(s) connecting (32 handshakes in flight each), ${rounds} round(s), deadline ${deadline}s`);

    // Wait for the task to end, reporting progress; give up after joins + rounds could have finished.
    const giveUp = Date.now() + (180 + rounds * (deadline + 30)) * 1000;
    let lastReport = 0;
    let outcome;
    ended.then((s) => (outcome = s));
    while (outcome === undefined && Date.now() < giveUp) {
      await sleep(250);
      const s = mergeStats(latest.filter(Boolean));
      // Clients do not reconnect here; once fewer than minClients remain the task cannot go on.
      const dropped = sumValues(s.disconnects);
      if (dropped > n - minClients && Object.keys(serverLog.started).length === Object.keys(serverLog.ended).length) {
        await sleep(2000);
        outcome = `stalled: ${dropped} clients dropped, fewer than minClients=${minClients} left`;
        break;
      }
      if (Date.now() - lastReport > 3000) {
        lastReport = Date.now();
        progress(
          `  [4] N=${n}: connected ${s.connected ?? 0}, joined ${s.joined ?? 0}, round starts ${sumValues(s.roundStarts)}, accepted ${sumValues(s.submitOk)}, rejected ${sumValues(s.submitRejected)}, RSS ${fmt(rssMiB(child.pid), 0)} MiB (peak ${fmt(peak, 0)})`,
        );
      }
    }
    row.outcome = outcome ?? 'timed out';
    await sleep(300); // late acks and round:end messages
    row.rssEndMiB = rssMiB(child.pid);
    for (const w of workers) w.postMessage('stop');
    const t = Date.now();
    while (finals.filter(Boolean).length < workers.length && Date.now() - t < 10_000) await sleep(50);
    const s = mergeStats(finals.map((f, i) => f ?? latest[i]).filter(Boolean));
    if (s.joined === n && s.lastJoin?.at) row.joinSeconds = (s.lastJoin.at - connectStarted) / 1000;
    Object.assign(row, {
      taskId,
      connected: s.connected ?? 0,
      joined: s.joined ?? 0,
      connectErrors: s.connectErrors,
      joinErrors: s.joinErrors,
      roundStartsReceived: s.roundStarts,
      submitOk: sumValues(s.submitOk),
      submitRejected: s.submitRejected,
      submitTimeouts: s.submitTimeouts ?? 0,
      disconnects: s.disconnects,
      maxClientLoopDelayMs: s.maxLoopDelayMs,
      taskDoneReceived: s.taskDone ?? 0,
      serverRejections: serverLog.rejections,
      serverLogLines: serverLog.lines,
    });
    row.rssPeakMiB = peak;
  } catch (e) {
    row.outcome = 'error';
    row.failReasons.push(e.message);
  } finally {
    clearInterval(sampler);
    clearInterval(prober);
    for (const w of workers) await w.terminate().catch(() => undefined);
    if (!exited) child.kill('SIGTERM');
    await Promise.race([exitP, sleep(10_000)]);
    if (!exited) child.kill('SIGKILL');
    stopTail();
    if (process.env.TESSERA_BENCH_KEEP_LOGS) {
      const kept = join(BENCH_DIR, 'results', `scale-${n}-server.log`);
      copyFileSync(logFile, kept);
      row.serverLogKept = kept;
    }
    rmSync(dataDir, { recursive: true, force: true });
  }
  const lost = n * rounds - (row.submitOk ?? 0) - sumValues(row.submitRejected);
  row.lostSubmissions = Math.max(0, lost);
  row.ok = row.roundsCompleted === rounds && row.roundsFailed === 0;
  return row;
}

export async function runScale(ctx) {
  const { quick, tmpDir } = ctx;
  const sizes = ctx.scaleSizes ?? (quick ? [100, 500, 1000] : [100, 500, 1000, 2000]);
  const rounds = quick ? 1 : 2;
  const deadline = 120;
  const notes = [];
  const limits = openFileLimits();
  if (limits) notes.push(`Open-file limit ${limits.soft} (hard ${limits.hard}); each connection holds one descriptor in the server and one in the bench process.`);
  const topology = await tinyTopology();
  const rows = [];
  for (const n of sizes) {
    if (limits && limits.soft < n + 256) {
      rows.push({ clients: n, outcome: 'skipped', failReasons: [`open-file limit ${limits.soft} < ${n + 256}: raise it with ulimit -n`], roundSeconds: [] });
      continue;
    }
    progress(`  [4] ${n} concurrent clients: starting a server process`);
    const row = await runOne(n, { rounds, deadline, topology, tmpRoot: tmpDir });
    rows.push(row);
    progress(
      `  [4] N=${n}: ${row.outcome}; rounds ${row.roundsCompleted}/${rounds} completed, round time ${row.roundSeconds.map((x) => fmt(x, 2)).join(', ')} s, peak RSS ${fmt(row.rssPeakMiB, 0)} MiB${row.failReasons.length ? `; ${row.failReasons.join('; ')}` : ''}`,
    );
  }
  const breaks = rows.find((r) => !r.ok);
  const md = table(
    ['clients', 'rounds ok', 'join all (s)', 'round wall time (s)', 'updates accepted/s', 'server RSS idle → joined → peak (MiB)', 'accepted', 'rejected', 'lost', 'connect/join errors', 'disconnects', 'slowest /healthz · client loop stall (ms)'],
    rows.map((r) => [
      int(r.clients),
      `${r.roundsCompleted ?? 0}/${r.rounds ?? rounds}${r.outcome !== 'done' ? ` (${r.outcome})` : ''}`,
      fmt(r.joinSeconds, 1),
      r.roundSeconds.length ? r.roundSeconds.map((x) => fmt(x, 2)).join(', ') : '–',
      r.roundSeconds.length && r.submitOk ? int(r.submitOk / r.roundSeconds.reduce((a, b) => a + b, 0)) : '–',
      `${fmt(r.rssIdleMiB, 0)} → ${fmt(r.rssJoinedMiB, 0)} → ${fmt(r.rssPeakMiB, 0)}`,
      int(r.submitOk),
      describe(r.submitRejected) || '0',
      int(r.lostSubmissions),
      describe({ ...r.connectErrors, ...r.joinErrors }) || '0',
      describe(r.disconnects) || '0',
      `${fmt(r.maxHealthzMs, 0)} · ${fmt(r.maxClientLoopDelayMs, 0)}`,
    ]),
    ['r', 'l', 'r', 'r', 'r', 'r', 'r', 'l', 'r', 'l', 'l', 'r'],
  );
  notes.push(
    `Model: 784→10 dense (7,850 params, 31 KB per update). Task: clientsPerRound = N, minClients = ⌈0.9N⌉, waitForClients = N, deadline ${deadline} s, evaluateEvery 0, ${rounds} round(s). Server: \`tessera server\` child process (JSON logs parsed for round start/end); clients: socket.io-client connections (websocket, forceNew) in worker threads of the bench process, on the same machine — clients and server share its CPUs.`,
  );
  notes.push(
    'Round wall time: the server log\'s "round N started" → "round N completed" (cohort emission, every submission validated and acked, FedAvg, checkpoint). Lost = submissions neither acked nor rejected (ack timeouts, dropped connections). Last column: the slowest answer to GET /healthz, polled every 500 ms (server responsiveness under load), and the longest event-loop stall of a client worker thread (when large, the simulated clients rather than the server are the bottleneck). Simulated clients do not reconnect (real TesseraClients retry with backoff).',
  );
  notes.push(breaks ? `First size that did not complete every round cleanly: N=${breaks.clients} (${breaks.outcome}; ${breaks.failReasons.join('; ') || 'see the row'}).` : `Every size completed all rounds (largest tried: ${sizes.at(-1)}).`);
  return { title: 'Scale: one server, N concurrent clients', rows, table: md, notes, rounds, deadline };
}
