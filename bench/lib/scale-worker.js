// Worker thread for bench section 4: hosts many lightweight simulated clients, each its own
// socket.io-client connection (forceNew: no multiplexing). A client connects with its token,
// joins, keeps the task's manifest, answers every round:start with a fake delta of the right
// shape, and counts what happens: acks, rejections by code, ack timeouts, disconnects.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { clearInterval, setInterval } from 'node:timers';
import { parentPort, workerData } from 'node:worker_threads';
import { io } from 'socket.io-client';
import { Events, PROTOCOL_VERSION } from '@tessera/protocol';

const { url, clients, connectConcurrency, ackTimeoutMs } = workerData;

const stats = {
  clients: clients.length,
  connected: 0,
  connectErrors: {},
  joined: 0,
  joinErrors: {},
  tasks: 0,
  roundStarts: {},
  submitOk: {},
  submitRejected: {},
  submitTimeouts: 0,
  roundEnds: {},
  taskDone: 0,
  disconnects: {},
  firstRoundStart: {},
  lastRoundStart: {},
  lastAck: {},
  lastRoundEnd: {},
  lastJoin: {},
  /** Longest event-loop stall of this worker (ms): separates client-side from server-side slowness. */
  maxLoopDelayMs: 0,
};
const bump = (o, k) => (o[k] = (o[k] ?? 0) + 1);
const sockets = [];
let payload; // one fake delta shared by every client of this worker (read-only)
let stopping = false;

function updateFor(manifest) {
  if (!payload || payload.manifest !== manifest) {
    const n = manifest.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
    const values = new Float32Array(n).fill(0.001);
    payload = { manifest, data: new Uint8Array(values.buffer) };
  }
  return payload;
}

function startClient({ id, token }) {
  return new Promise((resolve) => {
    const socket = io(url, { transports: ['websocket'], auth: { token }, forceNew: true, reconnection: false, timeout: 120_000 });
    sockets.push(socket);
    let manifest;
    let settled = false;
    const settle = () => {
      if (!settled) {
        settled = true;
        resolve();
      }
    };
    socket.on('connect', async () => {
      stats.connected++;
      settle();
      try {
        const ack = await socket.timeout(ackTimeoutMs).emitWithAck(Events.JOIN, {
          protocolVersion: PROTOCOL_VERSION,
          clientId: id,
          platform: 'node',
          backend: 'bench-sim',
          numTrainExamples: 100,
          numTestExamples: 0,
        });
        if (ack.ok) {
          stats.joined++;
          stats.lastJoin.at = Date.now();
        } else bump(stats.joinErrors, ack.error.code);
      } catch {
        bump(stats.joinErrors, 'ack timeout');
      }
    });
    socket.on('connect_error', (err) => {
      bump(stats.connectErrors, err.data?.code ?? err.message);
      settle();
    });
    socket.on('disconnect', (reason) => {
      if (!stopping && reason !== 'io client disconnect') bump(stats.disconnects, reason);
    });
    socket.on(Events.TASK, (msg) => {
      stats.tasks++;
      manifest = msg.weights.manifest;
    });
    socket.on(Events.ROUND_START, async (msg) => {
      const now = Date.now();
      const r = msg.roundId;
      bump(stats.roundStarts, r);
      stats.firstRoundStart[r] ??= now;
      stats.lastRoundStart[r] = now;
      try {
        const ack = await socket.timeout(ackTimeoutMs).emitWithAck(Events.SUBMIT, {
          taskId: msg.taskId,
          roundId: r,
          baseModelVersion: msg.modelVersion,
          numExamples: 100,
          metrics: { loss: 1, accuracy: 0.1 },
          update: { kind: 'plain', tensors: updateFor(manifest ?? msg.weights.manifest) },
        });
        if (ack.ok) bump(stats.submitOk, r);
        else bump(stats.submitRejected, ack.error.code);
        stats.lastAck[r] = Date.now();
      } catch {
        stats.submitTimeouts++;
      }
    });
    socket.on(Events.ROUND_END, (msg) => {
      bump(stats.roundEnds, `${msg.roundId}:${msg.status}`);
      stats.lastRoundEnd[msg.roundId] = Date.now();
    });
    socket.on(Events.TASK_DONE, () => {
      stats.taskDone++;
    });
  });
}

// Connect with a bounded number of handshakes in flight, so the server's accept backlog is not
// the thing being measured.
let next = 0;
async function lane() {
  while (next < clients.length) await startClient(clients[next++]);
}
const lanes = Array.from({ length: Math.min(connectConcurrency, clients.length) }, lane);
const loopDelay = monitorEventLoopDelay({ resolution: 20 });
loopDelay.enable();
const progressTimer = setInterval(() => {
  stats.maxLoopDelayMs = loopDelay.max / 1e6;
  parentPort.postMessage({ type: 'progress', stats });
}, 500);
Promise.all(lanes).then(() => parentPort.postMessage({ type: 'connected', stats }));

parentPort.on('message', (m) => {
  if (m === 'stop') {
    stopping = true;
    clearInterval(progressTimer);
    stats.maxLoopDelayMs = loopDelay.max / 1e6;
    for (const s of sockets) s.disconnect();
    parentPort.postMessage({ type: 'final', stats });
    setTimeout(() => process.exit(0), 200);
  }
});
