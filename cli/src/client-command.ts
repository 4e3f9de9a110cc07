import { DeviceCredentials, loadDataSpec, selectBackend, shardFor, TesseraClient, TfjsTrainer, type BackendPreference } from '@tessera/client-node';
import { readFileSync } from 'node:fs';
import { ed25519JwkSchema, type Ed25519Jwk, type SessionEvent } from '@tessera/protocol';
import { numberFlag, parseFlags, UsageError } from './args.js';

export const CLIENT_HELP = `Usage: tessera client --server URL --token JWT --data SPEC [options]

Joins a task on the server and trains on local data until the task is done.

  --server URL        aggregation server, e.g. http://127.0.0.1:8080
  --token JWT         session token (tessera token --role client --sub ID), or instead:
  --enroll TOKEN      a single-use enrollment token (tessera enroll): exchanged for a session token and a
                      refresh token, saved in --credentials; later runs refresh from that file
  --credentials FILE  device credentials file (default ./.tessera-device.json, mode 0600)
  --data SPEC         mnist | idx:DIR | csv:FILE[;label=COL][;shape=28x28x1][;scale=255][;test=FILE]
  --partition P       take one share of the data: iid | dirichlet:ALPHA | shards:K (simulations)
  --num-clients N     number of shares (with --partition)
  --index I           which share, 0-based (with --partition)
  --seed S            partition seed, the same for every client of a simulation (default tessera)
  --backend B         auto | tensorflow | wasm | cpu (default auto: fastest available)
  --threads T         wasm threads
  --task ID           join this task (default: the server's running task)
 --keyholder-key F   the key holder's public signing key (JWK file) to trust for encrypted tasks
  --retries N         reconnection attempts before giving up (default 12, backoff up to 5 s)
  --quiet             only errors and the final line
  -h, --help          this help

Exit codes: 0 task done, 1 task failed or server unreachable, 2 bad arguments, 3 refused (auth/version).`;

/** `tessera client`. */
export async function runClientCommand(argv: string[]): Promise<number> {
  const f = parseFlags(argv, {
    server: { type: 'string' },
    token: { type: 'string' },
    data: { type: 'string' },
    partition: { type: 'string' },
    'num-clients': { type: 'string' },
    index: { type: 'string' },
    seed: { type: 'string' },
    backend: { type: 'string' },
    threads: { type: 'string' },
    task: { type: 'string' },
    quiet: { type: 'boolean' },
    retries: { type: 'string' },
    'keyholder-key': { type: 'string' },
    enroll: { type: 'string' },
    credentials: { type: 'string' },
  });
  if (f.help) {
    console.log(CLIENT_HELP);
    return 0;
  }
  if (!f.server) throw new UsageError('--server is required');
  let token: string | (() => Promise<string>);
  let deviceId: string | undefined;
  if (f.token) {
    token = f.token;
  } else {
    const file = f.credentials ?? '.tessera-device.json';
    const saved = DeviceCredentials.load(file);
    const creds = saved ?? (f.enroll ? await DeviceCredentials.enroll(f.server, f.enroll, { file }) : undefined);
    if (!creds) throw new UsageError('--token is required (or --enroll TOKEN, or saved --credentials)');
    if (!saved) console.log(`[${creds.clientId}] enrolled; credentials saved to ${file}`);
    token = () => creds.token();
    deviceId = creds.clientId;
  }
  if (!f.data) throw new UsageError('--data is required');
  const backendPref = (f.backend ?? 'auto') as BackendPreference;
  if (!['auto', 'tensorflow', 'wasm', 'cpu'].includes(backendPref)) throw new UsageError('--backend must be auto, tensorflow, wasm or cpu');
  let data = await loadDataSpec(f.data);
  if (f.partition) {
    const numClients = numberFlag(f['num-clients'], 'num-clients', NaN, { min: 1, integer: true });
    const index = numberFlag(f.index, 'index', NaN, { min: 0, integer: true });
    if (!Number.isFinite(numClients) || !Number.isFinite(index)) throw new UsageError('--partition needs --num-clients and --index');
    data = shardFor(data, { partition: f.partition, numClients, index, seed: f.seed ?? 'tessera' });
  }
  const choice = await selectBackend(backendPref, f.threads ? { threads: numberFlag(f.threads, 'threads', 1, { min: 1, integer: true }) } : {});
  const trainer = new TfjsTrainer(choice.backend, data.train, data.test);
  let clientId = '?';
  const say = (s: string) => {
    if (!f.quiet) console.log(`[${clientId}] ${s}`);
  };
  const client = new TesseraClient({
    server: f.server,
    token,
    ...(deviceId ? { clientId: deviceId } : {}),
    trainer,
    backendReason: choice.reason,
    ...(f['keyholder-key'] ? { keyholderKey: readJwk(f['keyholder-key']) } : {}),
    reconnectionAttempts: numberFlag(f.retries, 'retries', 12, { min: 0, integer: true }),
    ...(f.task ? { taskId: f.task } : {}),
    onEvent: (e: SessionEvent) => say(describe(e)),
  });
  clientId = client.clientId;
  say(`backend ${choice.backend} (${choice.reason}); ${data.train.n} training and ${data.test.n} test examples`);
  try {
    const done = await client.run();
    console.log(`[${clientId}] task ${done.taskId} ${done.status} at model v${done.modelVersion}`);
    return done.status === 'done' ? 0 : 1;
  } catch (e) {
    const code = (e as { code?: string }).code;
    console.error(`[${clientId}] ${code ? code + ': ' : ''}${(e as Error).message}`);
    return code === 'ERR_UNAUTHORIZED' || code === 'ERR_TOKEN_EXPIRED' || code === 'ERR_FORBIDDEN' || code === 'ERR_PROTOCOL_VERSION' ? 3 : 1;
  } finally {
    trainer.dispose();
  }
}

function readJwk(file: string): Ed25519Jwk {
  try {
    return ed25519JwkSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
  } catch (e) {
    throw new UsageError(`--keyholder-key: ${file} is not an Ed25519 public JWK (${(e as Error).message})`);
  }
}

function describe(e: SessionEvent): string {
  switch (e.type) {
    case 'joined':
      return `joined task ${e.taskId}`;
    case 'task':
      return `task '${e.name}' model v${e.modelVersion}, ${e.totalRounds} rounds`;
    case 'round-start':
      return `round ${e.roundId}: training from model v${e.modelVersion}, deadline in ${Math.round((e.deadline - Date.now()) / 1000)}s`;
    case 'train-progress': {
      const p = e.progress;
      return `round ${e.roundId}: epoch ${p.epoch}/${p.epochs} loss=${p.loss.toFixed(4)}${p.accuracy !== undefined ? ` acc=${p.accuracy.toFixed(4)}` : ''}${p.samplesPerSecond ? ` (${Math.round(p.samplesPerSecond)} samples/s)` : ''}`;
    }
    case 'submitted':
      return `round ${e.roundId}: update submitted (${e.numExamples} examples, ${(e.bytes / 1024).toFixed(0)} KiB)`;
    case 'rejected':
      return `round ${e.roundId}: rejected ${e.error.code}: ${e.error.message}`;
    case 'round-end':
      return `round ${e.end.roundId} ${e.end.status}${e.end.reason ? ` (${e.end.reason})` : ''}; global model v${e.end.modelVersion}`;
    case 'evaluated':
      return `round ${e.roundId}: global model on local test data: accuracy ${e.accuracy.toFixed(4)} loss ${e.loss.toFixed(4)} (${e.numExamples} examples)`;
    case 'done':
      return `task ${e.done.status}`;
    case 'error':
      return `error ${e.error.code}: ${e.error.message}`;
  }
}
