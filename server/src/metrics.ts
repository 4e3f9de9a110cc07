import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ClientHub } from './hub.js';
import type { TaskRunner } from './runner.js';

/** What the metrics read at scrape time. */
export interface MetricsSources {
  hub: ClientHub;
  runners: ReadonlyMap<string, TaskRunner>;
  /** All rejections counted by the server since start, by code (connection, join and submission). */
  rejectionCounts: ReadonlyMap<string, number>;
}

/**
 * The server's Prometheus metrics (prom-client), on a registry of its own so that several servers
 * in one process (tests) do not share counters. Served at GET /metrics.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly rounds: Counter<'task' | 'status'>;
  readonly roundDuration: Histogram<'status'>;
  readonly submissions: Counter<'result' | 'code'>;
  readonly socketBytes: Counter<'direction'>;
  readonly logins: Counter<'result'>;
  readonly httpRequests: Counter<'method' | 'status'>;
  /** Traffic of runners that were replaced (a resumed task gets a new runner), so the byte counters never go down. */
  private readonly retiredTraffic = { down: 0, up: 0 };

  constructor(src: MetricsSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'tessera_' });
    this.rounds = new Counter({ name: 'tessera_rounds_total', help: 'Training rounds ended, by task and status (completed | failed).', labelNames: ['task', 'status'], registers });
    this.roundDuration = new Histogram({
      name: 'tessera_round_duration_seconds',
      help: 'Wall time of a training round from cohort selection to its end.',
      labelNames: ['status'],
      buckets: [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800],
      registers,
    });
    this.submissions = new Counter({
      name: 'tessera_submissions_total',
      help: "Update submissions by result (accepted | rejected) and rejection code ('' when accepted).",
      labelNames: ['result', 'code'],
      registers,
    });
    this.socketBytes = new Counter({ name: 'tessera_socket_bytes_total', help: 'Bytes of socket.io packets received (in) and sent (out), binary attachments included.', labelNames: ['direction'], registers });
    this.logins = new Counter({ name: 'tessera_admin_logins_total', help: 'Console logins by result (ok | failed | throttled).', labelNames: ['result'], registers });
    this.httpRequests = new Counter({ name: 'tessera_http_requests_total', help: 'HTTP requests by method and status code.', labelNames: ['method', 'status'], registers });
    new Counter({
      name: 'tessera_rejections_total',
      help: 'Everything the server refused, by error code: bad tokens at connection, bad joins, bad submissions.',
      labelNames: ['code'],
      registers,
      collect() {
        this.reset();
        for (const [code, n] of src.rejectionCounts) this.inc({ code }, n);
      },
    });
    new Gauge({
      name: 'tessera_connected_clients',
      help: 'Joined clients with a live socket, by platform and tfjs backend.',
      labelNames: ['platform', 'backend'],
      registers,
      collect() {
        this.reset();
        for (const c of src.hub.all()) if (c.socket.connected) this.inc({ platform: c.platform, backend: c.backend });
      },
    });
    const retired = this.retiredTraffic;
    new Counter({
      name: 'tessera_model_bytes_total',
      help: 'Model bytes sent to clients (down: weights) and received (up: updates) by task runners since start.',
      labelNames: ['direction'],
      registers,
      collect() {
        this.reset();
        let down = retired.down;
        let up = retired.up;
        for (const r of src.runners.values()) {
          down += r.traffic.bytesDown;
          up += r.traffic.bytesUp;
        }
        this.inc({ direction: 'down' }, down);
        this.inc({ direction: 'up' }, up);
      },
    });
    new Gauge({
      name: 'tessera_task_runners',
      help: 'Task runners in this process by state.',
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        for (const r of src.runners.values()) this.inc({ state: r.state });
      },
    });
  }

  /** Keeps a runner's traffic counted once it is replaced by a new runner for its task. */
  retireRunner(r: TaskRunner): void {
    this.retiredTraffic.down += r.traffic.bytesDown;
    this.retiredTraffic.up += r.traffic.bytesUp;
  }

  /** The exposition text and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
