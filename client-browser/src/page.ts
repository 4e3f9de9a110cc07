/**
 * The join page (`/join`): a person gives a token and picks local data; the tab then trains in
 * the task's rounds on the fastest real backend it has. Query parameters:
 * `?token=` (and joins at once with the chosen data), `?backend=webgpu|webgl|wasm|cpu`,
 * `?shard=i/n` (demo shard), `?autostart=0`.
 * State for tests and curious people: `window.__tessera`.
 */
import type { SessionEvent, TaskDone } from '@tessera/protocol';
import { backendFromQuery, selectBrowserBackend, type BackendChoice } from './backend.js';
import { subjectOf, TesseraBrowserClient } from './client.js';
import { loadCsvFile, loadDemoShard, loadImageFolder, parseShard, shardForClient, type LocalData, type ShardSpec } from './data.js';
import { BrowserTrainer } from './trainer.js';

/** What the page shows, as data (`window.__tessera`). */
export interface PageState {
  backend?: string;
  backendReason?: string;
  backendError?: string;
  clientId?: string;
  connection: string;
  joined: boolean;
  taskId?: string;
  data?: { source: string; numTrain: number; numTest: number };
  round?: { roundId: number; status: string };
  submitted: { roundId: number; accepted: boolean; code?: string; bytes?: number; accuracy?: number }[];
  evaluations: { roundId: number; accuracy: number; loss: number; numExamples: number }[];
  bytesSent: number;
  events: (SessionEvent & { at: number })[];
  done?: TaskDone;
  error?: string;
}

declare global {
  interface Window {
    __tessera: PageState;
  }
}

const state: PageState = { connection: 'not connected', joined: false, submitted: [], evaluations: [], bytesSent: 0, events: [] };
window.__tessera = state;

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page is missing #${id}`);
  return el as T;
};
const text = (id: string, value: string): void => {
  $(id).textContent = value;
};

const query = new URLSearchParams(location.search);
const DEFAULT_SHARDS = 4;

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}
const pct = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '—' : `${(x * 100).toFixed(1)} %`);

function log(message: string, kind: 'info' | 'ok' | 'warn' | 'error' = 'info'): void {
  const li = document.createElement('li');
  li.className = kind;
  const time = document.createElement('time');
  time.textContent = new Date().toLocaleTimeString();
  li.append(time, ` ${message}`);
  const list = $('log');
  list.prepend(li);
  while (list.children.length > 60) list.lastElementChild?.remove();
}

function showError(message: string): void {
  state.error = message;
  const el = $('setup-error');
  el.textContent = message;
  el.hidden = false;
  // The session has usually logged it already, with its code.
  if (!$('log').firstElementChild?.textContent?.endsWith(message)) log(message, 'error');
}

function showNotes(notes: readonly string[]): void {
  $('backend-reason').replaceChildren(
    ...notes.map((n) => {
      const li = document.createElement('li');
      li.textContent = n;
      return li;
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Backend: chosen as soon as the page opens, so the person sees what the tab can do.

const requestedBackend = backendFromQuery(location.search);
if (query.has('backend') && requestedBackend === 'auto') log(`ignoring ?backend=${query.get('backend')} (use webgpu, webgl, wasm or cpu)`, 'warn');

const backendReady: Promise<BackendChoice> = selectBrowserBackend({ prefer: requestedBackend, wasmPath: new URL('wasm/', document.baseURI).href }).then(
  (choice) => {
    state.backend = choice.backend;
    state.backendReason = choice.reason;
    text('backend', choice.backend);
    showNotes(choice.notes);
    log(`backend ${choice.backend} selected`);
    return choice;
  },
  (e: unknown) => {
    const message = (e as Error).message;
    state.backendError = message;
    text('backend', 'unavailable');
    showNotes([message]);
    throw e;
  },
);
backendReady.catch(() => undefined);

// ---------------------------------------------------------------------------------------------
// Data

const shardSelect = $<HTMLSelectElement>('shard');
const fromQuery = query.get('shard');
const shardOptions: string[] = ['auto', ...Array.from({ length: DEFAULT_SHARDS }, (_, i) => `${i}/${DEFAULT_SHARDS}`)];
if (fromQuery && !shardOptions.includes(fromQuery)) shardOptions.push(fromQuery);
for (const v of shardOptions) {
  const opt = document.createElement('option');
  opt.value = v;
  opt.textContent = v === 'auto' ? 'picked from your token' : `shard ${v}`;
  shardSelect.append(opt);
}
shardSelect.value = fromQuery ?? 'auto';

let dataPromise: Promise<LocalData> | undefined;

const dataKind = (): string => (document.querySelector<HTMLInputElement>('input[name="data"]:checked')?.value ?? 'demo');

function setData(p: Promise<LocalData>): Promise<LocalData> {
  dataPromise = p;
  text('data-summary', 'Reading your data…');
  p.then(
    (d) => {
      if (dataPromise !== p) return;
      state.data = { source: d.source, numTrain: d.train.n, numTest: d.test.n };
      const shape = d.train.featureShape.join('×');
      text('data-summary', `${d.source}: ${d.train.n} training + ${d.test.n} held-out examples, ${d.train.numClasses} classes, ${shape} each. Stays in this tab.`);
    },
    (e: unknown) => {
      if (dataPromise === p) text('data-summary', `Cannot use this data: ${(e as Error).message}`);
    },
  );
  return p;
}

function demoShardSpec(token: string): ShardSpec {
  const v = shardSelect.value;
  if (v !== 'auto') return parseShard(v);
  try {
    return shardForClient(subjectOf(token), DEFAULT_SHARDS);
  } catch {
    return { index: 0, count: DEFAULT_SHARDS };
  }
}

/** The data the person picked, loading it if needed. */
async function currentData(token: string): Promise<LocalData> {
  switch (dataKind()) {
    case 'folder': {
      const files = $<HTMLInputElement>('folder').files;
      if (!files?.length) throw new Error('pick a folder of images first');
      return dataPromise ?? setData(loadImageFolder(files));
    }
    case 'csv': {
      const file = $<HTMLInputElement>('csv').files?.[0];
      if (!file) throw new Error('pick a CSV file first');
      return dataPromise ?? setData(loadCsvFile(file));
    }
    default:
      return setData(loadDemoShard(demoShardSpec(token)));
  }
}

$('folder').addEventListener('change', (ev) => {
  const files = (ev.target as HTMLInputElement).files;
  (document.querySelector('input[name="data"][value="folder"]') as HTMLInputElement).checked = true;
  if (files?.length) setData(loadImageFolder(files, {}, (done, total) => text('data-summary', `Decoding images… ${done}/${total}`))).catch(() => undefined);
});
$('csv').addEventListener('change', (ev) => {
  const file = (ev.target as HTMLInputElement).files?.[0];
  (document.querySelector('input[name="data"][value="csv"]') as HTMLInputElement).checked = true;
  if (file) setData(loadCsvFile(file)).catch(() => undefined);
});
for (const radio of document.querySelectorAll<HTMLInputElement>('input[name="data"]')) {
  radio.addEventListener('change', () => {
    dataPromise = undefined;
    if (dataKind() === 'demo') void currentData($<HTMLInputElement>('token').value).catch(() => undefined);
    else text('data-summary', 'Pick your files.');
  });
}
shardSelect.addEventListener('change', () => void currentData($<HTMLInputElement>('token').value).catch(() => undefined));

// ---------------------------------------------------------------------------------------------
// Session

/** Name, id and length of the task, once assigned. */
let taskLine = '';

function onEvent(e: SessionEvent, client: TesseraBrowserClient): void {
  state.events.push({ ...e, at: Date.now() });
  switch (e.type) {
    case 'joined':
      state.joined = true;
      state.taskId = e.taskId;
      log(`joined task ${e.taskId} as ${client.clientId}`, 'ok');
      break;
    case 'task':
      taskLine = `${e.name} (${e.taskId}), ${e.totalRounds} rounds`;
      text('task', `${taskLine} — global model v${e.modelVersion}`);
      log(`received model v${e.modelVersion} of “${e.name}”`);
      break;
    case 'round-start': {
      state.round = { roundId: e.roundId, status: 'training' };
      const secs = Math.max(0, Math.round((e.deadline - Date.now()) / 1000));
      text('round', `round ${e.roundId}: training on model v${e.modelVersion} (deadline in ${secs} s)`);
      text('progress-text', `Local training, round ${e.roundId}: starting…`);
      $<HTMLProgressElement>('progress').value = 0;
      log(`round ${e.roundId} started: training locally`);
      break;
    }
    case 'train-progress': {
      const p = e.progress;
      $<HTMLProgressElement>('progress').value = p.epoch / p.epochs;
      text('progress-text', `Local training, round ${e.roundId}: epoch ${p.epoch}/${p.epochs}, loss ${p.loss.toFixed(4)}${p.accuracy === undefined ? '' : `, accuracy ${pct(p.accuracy)}`}`);
      if (p.samplesPerSecond) text('speed', `${Math.round(p.samplesPerSecond)} samples/s`);
      break;
    }
    case 'submitted':
      state.submitted.push({ roundId: e.roundId, accepted: true, bytes: e.bytes, ...(e.metrics.accuracy !== undefined ? { accuracy: e.metrics.accuracy } : {}) });
      state.bytesSent = client.bytesUp;
      state.round = { roundId: e.roundId, status: 'submitted' };
      text('round', `round ${e.roundId}: update accepted, waiting for the other participants`);
      text('local-acc', pct(e.metrics.accuracy));
      text('rounds-done', String(state.submitted.filter((s) => s.accepted).length));
      text('bytes-sent', formatBytes(state.bytesSent));
      log(`round ${e.roundId}: sent ${formatBytes(e.bytes)} update from ${e.numExamples} examples — accepted`, 'ok');
      break;
    case 'rejected':
      state.submitted.push({ roundId: e.roundId, accepted: false, code: e.error.code });
      log(`round ${e.roundId}: rejected ${e.error.code}: ${e.error.message}`, 'warn');
      break;
    case 'round-end':
      state.round = { roundId: e.end.roundId, status: e.end.status };
      text('task', `${taskLine} — global model v${e.end.modelVersion}`);
      text('round', e.end.status === 'completed' ? `round ${e.end.roundId} completed → global model v${e.end.modelVersion}` : `round ${e.end.roundId} failed: ${e.end.reason ?? 'unknown reason'}`);
      log(e.end.status === 'completed' ? `round ${e.end.roundId} completed, global model is now v${e.end.modelVersion}` : `round ${e.end.roundId} failed: ${e.end.reason ?? ''}`, e.end.status === 'completed' ? 'ok' : 'warn');
      break;
    case 'evaluated':
      state.evaluations.push({ roundId: e.roundId, accuracy: e.accuracy, loss: e.loss, numExamples: e.numExamples });
      text('global-acc', pct(e.accuracy));
      log(`global model after round ${e.roundId}: accuracy ${pct(e.accuracy)} on ${e.numExamples} held-out examples here`);
      break;
    case 'done':
      state.done = e.done;
      text('round', `task ${e.done.status} at model v${e.done.modelVersion}${e.done.reason ? ` (${e.done.reason})` : ''}`);
      log(`task ${e.done.status}: final global model v${e.done.modelVersion}`, 'ok');
      break;
    case 'error':
      log(`${e.error.code}: ${e.error.message}`, 'error');
      break;
  }
}

let running = false;

async function join(): Promise<void> {
  if (running) return;
  const token = $<HTMLInputElement>('token').value.trim();
  $('setup-error').hidden = true;
  if (!token) return showError('Enter the token you were given.');
  let clientId: string;
  try {
    clientId = subjectOf(token);
  } catch (e) {
    return showError((e as Error).message);
  }
  running = true;
  $<HTMLButtonElement>('join').disabled = true;
  try {
    const [choice, data] = await Promise.all([backendReady, currentData(token)]);
    state.clientId = clientId;
    const trainer = new BrowserTrainer(choice.backend, data.train, data.test);
    const client = new TesseraBrowserClient({
      token,
      trainer,
      backendReason: choice.reason,
      // Encrypted tasks: the key holder's signing key to trust (`?keyholder=<JWK x>`, from the operator).
      session: {
        // node-seal's wasm is served next to tfjs' (never from another host).
        sealOptions: { locateFile: (file: string) => new URL(`./wasm/${file}`, location.href).href },
        ...(query.get('keyholder') ? { keyholderKey: { kty: 'OKP' as const, crv: 'Ed25519' as const, x: query.get('keyholder')! } } : {}),
      },
      onEvent: (e) => onEvent(e, client),
      onConnection: (s, detail) => {
        state.connection = s;
        text('connection', s === 'connected' ? `connected to ${location.host}` : `${s}${detail ? ` (${detail})` : ''}`);
      },
    });
    text('connection', 'connecting…');
    await client.run();
    text('connection', 'closed: the task is over');
    trainer.dispose();
  } catch (e) {
    text('connection', 'not connected');
    showError((e as Error).message);
  } finally {
    running = false;
    $<HTMLButtonElement>('join').disabled = false;
  }
}

$('setup').addEventListener('submit', (ev) => {
  ev.preventDefault();
  void join();
});

const queryToken = query.get('token');
if (queryToken) {
  $<HTMLInputElement>('token').value = queryToken;
  // Keep the token out of the address bar (and out of history and screenshots).
  query.delete('token');
  history.replaceState(null, '', `${location.pathname}${query.size ? `?${query}` : ''}`);
}
if (queryToken && query.get('autostart') !== '0') void join();
else void currentData(queryToken ?? '').catch(() => undefined);
