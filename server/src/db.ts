import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { TensorSpec } from '@tessera/protocol';

export type TaskStatus = 'running' | 'paused' | 'done' | 'failed' | 'aborted' | 'stopped';
export type RoundStatus = 'training' | 'aggregating' | 'evaluating' | 'completed' | 'failed' | 'interrupted';

export interface TaskRow {
  id: string;
  name: string;
  spec: string;
  status: TaskStatus;
  modelVersion: number;
  completedRounds: number;
  reason: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface RoundRow {
  taskId: string;
  roundId: number;
  status: RoundStatus;
  modelVersion: number;
  startedAt: number;
  endedAt: number | null;
  cohort: string[];
  accepted: number;
  rejected: number;
  trainMetrics: Record<string, number> | null;
  evalMetrics: Record<string, number> | null;
  reason: string | null;
}

/** One completed round's entry in the privacy ledger: what it cost, and ε spent up to it. */
export interface LedgerEntry {
  roundId: number;
  samplingRate: number;
  noiseMultiplier: number;
  clipNorm: number;
  nextClipNorm: number;
  epsilon: number;
  delta: number;
  order: number | null;
}

export interface Checkpoint {
  taskId: string;
  version: number;
  roundId: number | null;
  manifest: TensorSpec[];
  data: Uint8Array;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS tasks (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, spec TEXT NOT NULL, topology TEXT NOT NULL,
  status TEXT NOT NULL, model_version INTEGER NOT NULL, completed_rounds INTEGER NOT NULL,
  reason TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (
  task_id TEXT NOT NULL, version INTEGER NOT NULL, round_id INTEGER, manifest TEXT NOT NULL,
  data BLOB NOT NULL, sha256 TEXT NOT NULL, created_at INTEGER NOT NULL, PRIMARY KEY (task_id, version));
CREATE TABLE IF NOT EXISTS rounds (
  task_id TEXT NOT NULL, round_id INTEGER NOT NULL, status TEXT NOT NULL, model_version INTEGER NOT NULL,
  started_at INTEGER NOT NULL, ended_at INTEGER, cohort TEXT NOT NULL, accepted INTEGER NOT NULL DEFAULT 0,
  rejected INTEGER NOT NULL DEFAULT 0, train_metrics TEXT, eval_metrics TEXT, reason TEXT,
  PRIMARY KEY (task_id, round_id));
CREATE TABLE IF NOT EXISTS clients (
  id TEXT PRIMARY KEY, platform TEXT NOT NULL, backend TEXT NOT NULL, num_train INTEGER NOT NULL,
  num_test INTEGER NOT NULL, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,
  rounds_contributed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS rejections (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, task_id TEXT, round_id INTEGER,
  client_id TEXT, code TEXT NOT NULL, message TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS privacy_ledger (
  task_id TEXT NOT NULL, round_id INTEGER NOT NULL, sampling_rate REAL NOT NULL, noise_multiplier REAL NOT NULL,
  clip_norm REAL NOT NULL, next_clip_norm REAL NOT NULL, epsilon REAL NOT NULL, delta REAL NOT NULL,
  rdp_order REAL, at INTEGER NOT NULL, PRIMARY KEY (task_id, round_id));
CREATE TABLE IF NOT EXISTS he_publications (
  task_id TEXT PRIMARY KEY, params TEXT NOT NULL, public_key BLOB NOT NULL, keyholder_jwk TEXT NOT NULL,
  signature TEXT NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
  target TEXT, details TEXT, ip TEXT);
`;

type Row = Record<string, unknown>;
const str = (v: unknown): string => String(v);
const num = (v: unknown): number => Number(v);
const json = <T>(v: unknown): T | null => (v === null || v === undefined ? null : (JSON.parse(String(v)) as T));

/**
 * The server's embedded store (node:sqlite, WAL). Every state change of a round that matters
 * for recovery is one transaction, so a `kill -9` leaves either the old or the new state.
 */
export class Store {
  readonly db: DatabaseSync;

  constructor(dataDir: string) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    this.db = new DatabaseSync(join(dataDir, 'tessera.db'));
    // WAL + synchronous=NORMAL: every commit survives a process crash (kill -9); only an OS crash or
    // power loss can drop the last commits, never corrupt the file. FULL costs an fsync per message,
    // which starved socket.io heartbeats at ~10,000 clients (bench section 4).
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;');
    this.db.exec(SCHEMA);
    // Databases created before the audit log recorded where an action came from.
    if (!(this.stmt('PRAGMA table_info(audit)').all() as Row[]).some((c) => c.name === 'ip')) this.db.exec('ALTER TABLE audit ADD COLUMN ip TEXT');
  }

  private readonly statements = new Map<string, StatementSync>();

  /** Prepared statements are compiled once and reused (this runs once per message at scale). */
  private stmt(sql: string): StatementSync {
    let st = this.statements.get(sql);
    if (!st) this.statements.set(sql, (st = this.db.prepare(sql)));
    return st;
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }

  /** Runs fn inside one transaction. */
  tx<T>(fn: () => T): T {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const r = fn();
      this.db.exec('COMMIT');
      return r;
    } catch (e) {
      this.db.exec('ROLLBACK');
      throw e;
    }
  }

  createTask(t: { id: string; name: string; spec: unknown; topology: string }, initial: Checkpoint): void {
    const now = Date.now();
    this.tx(() => {
      this.db
        .prepare('INSERT INTO tasks (id, name, spec, topology, status, model_version, completed_rounds, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 0, 0, ?, ?)')
        .run(t.id, t.name, JSON.stringify(t.spec), t.topology, 'running', now, now);
      this.putCheckpoint(initial);
    });
  }

  private taskRow(r: Row): TaskRow {
    return {
      id: str(r.id),
      name: str(r.name),
      spec: str(r.spec),
      status: str(r.status) as TaskStatus,
      modelVersion: num(r.model_version),
      completedRounds: num(r.completed_rounds),
      reason: r.reason === null ? null : str(r.reason),
      createdAt: num(r.created_at),
      updatedAt: num(r.updated_at),
    };
  }

  listTasks(): TaskRow[] {
    return (this.stmt('SELECT * FROM tasks ORDER BY created_at').all() as Row[]).map((r) => this.taskRow(r));
  }

  getTask(id: string): TaskRow | undefined {
    const r = this.stmt('SELECT * FROM tasks WHERE id = ?').get(id) as Row | undefined;
    return r ? this.taskRow(r) : undefined;
  }

  getTopology(id: string): string {
    const r = this.stmt('SELECT topology FROM tasks WHERE id = ?').get(id) as Row | undefined;
    if (!r) throw new Error(`no task ${id}`);
    return str(r.topology);
  }

  setTaskStatus(id: string, status: TaskStatus, reason: string | null = null): void {
    this.stmt('UPDATE tasks SET status = ?, reason = ?, updated_at = ? WHERE id = ?').run(status, reason, Date.now(), id);
  }

  putCheckpoint(c: Checkpoint): void {
    this.db
      .prepare('INSERT INTO checkpoints (task_id, version, round_id, manifest, data, sha256, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(c.taskId, c.version, c.roundId, JSON.stringify(c.manifest), c.data, sha256Hex(c.data), Date.now());
  }

  getCheckpoint(taskId: string, version: number): Checkpoint | undefined {
    const r = this.stmt('SELECT * FROM checkpoints WHERE task_id = ? AND version = ?').get(taskId, version) as Row | undefined;
    if (!r) return undefined;
    const data = r.data as Uint8Array;
    if (sha256Hex(data) !== str(r.sha256)) throw new Error(`checkpoint ${taskId}@${version} fails its checksum`);
    return { taskId, version, roundId: r.round_id === null ? null : num(r.round_id), manifest: JSON.parse(str(r.manifest)) as TensorSpec[], data };
  }

  listCheckpoints(taskId: string): { version: number; roundId: number | null; sha256: string; createdAt: number }[] {
    return (this.stmt('SELECT version, round_id, sha256, created_at FROM checkpoints WHERE task_id = ? ORDER BY version').all(taskId) as Row[]).map((r) => ({
      version: num(r.version),
      roundId: r.round_id === null ? null : num(r.round_id),
      sha256: str(r.sha256),
      createdAt: num(r.created_at),
    }));
  }

  lastRoundId(taskId: string): number {
    const r = this.stmt('SELECT MAX(round_id) AS m FROM rounds WHERE task_id = ?').get(taskId) as Row;
    return r.m === null ? 0 : num(r.m);
  }

  startRound(taskId: string, roundId: number, modelVersion: number, cohort: string[]): void {
    this.db
      .prepare('INSERT INTO rounds (task_id, round_id, status, model_version, started_at, cohort) VALUES (?, ?, ?, ?, ?, ?)')
      .run(taskId, roundId, 'training', modelVersion, Date.now(), JSON.stringify(cohort));
  }

  setRoundStatus(taskId: string, roundId: number, status: RoundStatus): void {
    this.stmt('UPDATE rounds SET status = ? WHERE task_id = ? AND round_id = ?').run(status, taskId, roundId);
  }

  countRoundSubmission(taskId: string, roundId: number, accepted: boolean): void {
    const col = accepted ? 'accepted' : 'rejected';
    this.stmt(`UPDATE rounds SET ${col} = ${col} + 1 WHERE task_id = ? AND round_id = ?`).run(taskId, roundId);
  }

  /**
   * Completes a round atomically: the new checkpoint, the round's row, the task's pointer and the
   * round's privacy-ledger entry move together.
   */
  completeRound(c: Checkpoint & { roundId: number }, metrics: Record<string, number>, contributors: string[], ledger?: Omit<LedgerEntry, 'roundId'>): void {
    this.tx(() => {
      if (ledger) {
        this.db
          .prepare('INSERT INTO privacy_ledger (task_id, round_id, sampling_rate, noise_multiplier, clip_norm, next_clip_norm, epsilon, delta, rdp_order, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
          .run(c.taskId, c.roundId, ledger.samplingRate, ledger.noiseMultiplier, ledger.clipNorm, ledger.nextClipNorm, ledger.epsilon, ledger.delta, ledger.order, Date.now());
      }
      this.putCheckpoint(c);
      this.db
        .prepare('UPDATE rounds SET status = ?, ended_at = ?, train_metrics = ? WHERE task_id = ? AND round_id = ?')
        .run('completed', Date.now(), JSON.stringify(metrics), c.taskId, c.roundId);
      this.db
        .prepare('UPDATE tasks SET model_version = ?, completed_rounds = completed_rounds + 1, updated_at = ? WHERE id = ?')
        .run(c.version, Date.now(), c.taskId);
      const inc = this.stmt('UPDATE clients SET rounds_contributed = rounds_contributed + 1 WHERE id = ?');
      for (const id of contributors) inc.run(id);
    });
  }

  ledger(taskId: string): LedgerEntry[] {
    return (this.stmt('SELECT * FROM privacy_ledger WHERE task_id = ? ORDER BY round_id').all(taskId) as Row[]).map((r) => ({
      roundId: num(r.round_id),
      samplingRate: num(r.sampling_rate),
      noiseMultiplier: num(r.noise_multiplier),
      clipNorm: num(r.clip_norm),
      nextClipNorm: num(r.next_clip_norm),
      epsilon: num(r.epsilon),
      delta: num(r.delta),
      order: r.rdp_order === null ? null : num(r.rdp_order),
    }));
  }

  /** The key holder's public material for an HE task (public key only: the server never sees a secret key). */
  putHePublication(taskId: string, pub: { params: unknown; publicKey: Uint8Array; keyholderJwk: unknown; signature: string }): void {
    this.db
      .prepare(
        `INSERT INTO he_publications (task_id, params, public_key, keyholder_jwk, signature, at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(task_id) DO UPDATE SET params = excluded.params, public_key = excluded.public_key,
         keyholder_jwk = excluded.keyholder_jwk, signature = excluded.signature, at = excluded.at`,
      )
      .run(taskId, JSON.stringify(pub.params), pub.publicKey, JSON.stringify(pub.keyholderJwk), pub.signature, Date.now());
  }

  getHePublication(taskId: string): { params: unknown; publicKey: Uint8Array; keyholderJwk: unknown; signature: string } | undefined {
    const r = this.stmt('SELECT * FROM he_publications WHERE task_id = ?').get(taskId) as Row | undefined;
    if (!r) return undefined;
    return { params: JSON.parse(str(r.params)), publicKey: r.public_key as Uint8Array, keyholderJwk: JSON.parse(str(r.keyholder_jwk)), signature: str(r.signature) };
  }

  failRound(taskId: string, roundId: number, reason: string): void {
    this.stmt('UPDATE rounds SET status = ?, ended_at = ?, reason = ? WHERE task_id = ? AND round_id = ?').run('failed', Date.now(), reason, taskId, roundId);
  }

  setRoundEval(taskId: string, roundId: number, evalMetrics: Record<string, number>): void {
    this.stmt('UPDATE rounds SET eval_metrics = ? WHERE task_id = ? AND round_id = ?').run(JSON.stringify(evalMetrics), taskId, roundId);
  }

  /** Rounds left open by a crash become 'interrupted'; the task resumes from its checkpoint pointer. */
  markInterrupted(taskId: string, reason = 'server restarted'): number {
    const r = this.db
      .prepare("UPDATE rounds SET status = 'interrupted', ended_at = ?, reason = ? WHERE task_id = ? AND status IN ('training', 'aggregating')")
      .run(Date.now(), reason, taskId);
    return Number(r.changes);
  }

  listRounds(taskId: string): RoundRow[] {
    return (this.stmt('SELECT * FROM rounds WHERE task_id = ? ORDER BY round_id').all(taskId) as Row[]).map((r) => ({
      taskId: str(r.task_id),
      roundId: num(r.round_id),
      status: str(r.status) as RoundStatus,
      modelVersion: num(r.model_version),
      startedAt: num(r.started_at),
      endedAt: r.ended_at === null ? null : num(r.ended_at),
      cohort: JSON.parse(str(r.cohort)) as string[],
      accepted: num(r.accepted),
      rejected: num(r.rejected),
      trainMetrics: json<Record<string, number>>(r.train_metrics),
      evalMetrics: json<Record<string, number>>(r.eval_metrics),
      reason: r.reason === null ? null : str(r.reason),
    }));
  }

  upsertClient(c: { id: string; platform: string; backend: string; numTrain: number; numTest: number }): void {
    const now = Date.now();
    this.db
      .prepare(
        `INSERT INTO clients (id, platform, backend, num_train, num_test, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(id) DO UPDATE SET platform = excluded.platform, backend = excluded.backend, num_train = excluded.num_train,
         num_test = excluded.num_test, last_seen = excluded.last_seen`,
      )
      .run(c.id, c.platform, c.backend, c.numTrain, c.numTest, now, now);
  }

  listClients(): Row[] {
    return this.stmt('SELECT * FROM clients ORDER BY last_seen DESC').all() as Row[];
  }

  recordRejection(r: { taskId: string | null; roundId: number | null; clientId: string | null; code: string; message: string }): void {
    this.db
      .prepare('INSERT INTO rejections (at, task_id, round_id, client_id, code, message) VALUES (?, ?, ?, ?, ?, ?)')
      .run(Date.now(), r.taskId, r.roundId, r.clientId, r.code, r.message);
  }

  rejectionCounts(taskId?: string): Record<string, number> {
    const rows = (taskId
      ? this.stmt('SELECT code, COUNT(*) AS n FROM rejections WHERE task_id = ? GROUP BY code').all(taskId)
      : this.stmt('SELECT code, COUNT(*) AS n FROM rejections GROUP BY code').all()) as Row[];
    return Object.fromEntries(rows.map((r) => [str(r.code), num(r.n)]));
  }

  /** Appends to the audit log: who (actor), what (action, target, details), when, and from where (ip). */
  audit(actor: string, action: string, target: string | null, details?: unknown, ip?: string | null): void {
    this.db
      .prepare('INSERT INTO audit (at, actor, action, target, details, ip) VALUES (?, ?, ?, ?, ?, ?)')
      .run(Date.now(), actor, action, target, details === undefined ? null : JSON.stringify(details), ip ?? null);
  }

  listAudit(limit = 200): Row[] {
    return this.stmt('SELECT * FROM audit ORDER BY id DESC LIMIT ?').all(limit) as Row[];
  }
}

function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
