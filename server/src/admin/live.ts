import { Server, type Namespace, type Socket } from 'socket.io';
import { toErrorBody } from '@tessera/protocol';
import type { Claims } from '../auth.js';
import type { RunnerStatus } from '../runner.js';
import type { TesseraServerApp } from '../server.js';

/** What the console's task page shows live. */
export interface TaskLive {
  task: { id: string; name: string; status: string; modelVersion: number; completedRounds: number; reason: string | null };
  runner: RunnerStatus | null;
  connected: { clientId: string; platform: string; backend: string }[];
  rejections: RejectionRow[];
  at: number;
}

export interface RejectionRow {
  at: number;
  roundId: number | null;
  clientId: string | null;
  code: string;
  message: string;
}

/** Recent rejections of a task, newest first. */
export function recentRejections(app: TesseraServerApp, taskId: string, limit = 50): RejectionRow[] {
  const rows = app.store.db.prepare('SELECT at, round_id, client_id, code, message FROM rejections WHERE task_id = ? ORDER BY id DESC LIMIT ?').all(taskId, limit) as Record<string, unknown>[];
  return rows.map((r) => ({
    at: Number(r.at),
    roundId: r.round_id === null ? null : Number(r.round_id),
    clientId: r.client_id === null ? null : String(r.client_id),
    code: String(r.code),
    message: String(r.message),
  }));
}

/** A task's live snapshot, or undefined when there is no such task. */
export function taskLive(app: TesseraServerApp, taskId: string): TaskLive | undefined {
  const t = app.store.getTask(taskId);
  if (!t) return undefined;
  return {
    task: { id: t.id, name: t.name, status: t.status, modelVersion: t.modelVersion, completedRounds: t.completedRounds, reason: t.reason },
    runner: app.runners.get(taskId)?.status() ?? null,
    connected: app.hub.forTask(taskId).map((c) => ({ clientId: c.clientId, platform: c.platform, backend: c.backend })),
    rejections: recentRejections(app, taskId, 20),
    at: Date.now(),
  };
}

const room = (taskId: string) => `task:${taskId}`;

/**
 * The console's live feed: socket.io namespace `/admin`, authenticated by the admin session cookie
 * or an admin JWT (`auth: { token }`). A page subscribes to a task and gets `task:state` whenever its
 * snapshot changes (checked every `intervalMs`) and `task:round` when a round ends or is evaluated;
 * every subscriber gets `tasks:changed` when a task is created or changes status.
 */
export class LiveFeed {
  readonly nsp: Namespace;
  private readonly last = new Map<string, string>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly app: TesseraServerApp,
    authenticate: (socket: Socket) => Promise<Claims>,
    intervalMs = 400,
  ) {
    // The admin namespace carries console events, not the client protocol: an untyped view of the same server.
    this.nsp = (app.io as unknown as Server).of('/admin');
    this.nsp.use((socket, next) => {
      authenticate(socket)
        .then((claims) => {
          socket.data = { claims };
          next();
        })
        .catch((e: unknown) => next(Object.assign(new Error(toErrorBody(e).message), { data: toErrorBody(e) })));
    });
    this.nsp.on('connection', (socket) => {
      socket.on('subscribe', (taskId: unknown, ack?: unknown) => {
        const reply = typeof ack === 'function' ? (ack as (r: unknown) => void) : () => undefined;
        if (typeof taskId !== 'string') return reply({ ok: false, error: { code: 'ERR_INVALID_MESSAGE', message: 'task id expected' } });
        const snap = taskLive(this.app, taskId);
        if (!snap) return reply({ ok: false, error: { code: 'ERR_NOT_FOUND', message: `no task ${taskId}` } });
        for (const r of socket.rooms) if (r.startsWith('task:')) void socket.leave(r);
        void socket.join(room(taskId));
        reply({ ok: true, state: snap });
      });
      socket.on('unsubscribe', () => {
        for (const r of socket.rooms) if (r.startsWith('task:')) void socket.leave(r);
      });
    });
    this.timer = setInterval(() => this.tick(), intervalMs);
    this.timer.unref();
  }

  private tick(): void {
    if (!this.app.store.db.isOpen) return;
    const rooms = this.nsp.adapter.rooms;
    for (const [name, members] of rooms) {
      if (!name.startsWith('task:') || members.size === 0) continue;
      const snap = taskLive(this.app, name.slice(5));
      if (!snap) continue;
      const { at: _at, ...comparable } = snap;
      const key = JSON.stringify(comparable);
      if (this.last.get(name) === key) continue;
      this.last.set(name, key);
      this.nsp.to(name).emit('task:state', snap);
    }
  }

  /** A round ended or was evaluated: subscribers refetch rounds, privacy and participants. */
  roundChanged(taskId: string, e: { roundId: number; kind: 'ended' | 'evaluated'; status?: string; metrics: Record<string, number> }): void {
    this.nsp.to(room(taskId)).emit('task:round', { taskId, ...e });
  }

  /** The task list changed (created, started, paused, resumed, aborted, finished). */
  tasksChanged(taskId: string, status: string): void {
    this.last.delete(room(taskId));
    this.nsp.emit('tasks:changed', { taskId, status });
  }

  close(): void {
    clearInterval(this.timer);
  }
}
