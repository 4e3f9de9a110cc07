/** The task page: live round state, charts, participants, rejections and the task's audit trail. */
import { api, type AuditRow, type Participant, type PrivacyReport, type RoundRow, type TaskDetail, type TaskLive } from './api.js';
import { chart, legend } from './charts.js';
import { ago, badge, fmt, h, mount, time, until } from './dom.js';
import { liveSocket } from './live.js';
import type { Ctx } from './views.js';

const IDLE_TEXT: Record<string, string> = {
  waiting: 'Waiting for enough eligible clients to connect…',
  evaluating: 'Round done; connected clients are evaluating the new model on their held-out data…',
  paused: 'Paused: no round runs until the task is resumed.',
  done: 'All rounds completed.',
  aborted: 'Aborted.',
  failed: 'Failed.',
  stopped: 'Stopped (privacy budget).',
};

const C = { indigo: '#4f46e5', teal: '#0d9488', amber: '#d97706', red: '#dc2626', slate: '#64748b', violet: '#7c3aed' };

/** Renders the page for task `id` into `root`; returns a cleanup function. */
export async function taskPage(root: HTMLElement, id: string, ctx: Ctx): Promise<() => void> {
  const header = h('div', { class: 'page-head' });
  const roundCard = h('section', { class: 'card round-card', 'data-testid': 'round' });
  const rejCard = h('section', { class: 'card', 'data-testid': 'rejections' });
  const charts = {
    accuracy: h('div', { class: 'chart-box' }),
    loss: h('div', { class: 'chart-box' }),
    privacy: h('div', { class: 'chart-box' }),
    duration: h('div', { class: 'chart-box' }),
  };
  const participants = h('section', { class: 'card', 'data-testid': 'participants' });
  const audit = h('section', { class: 'card', 'data-testid': 'task-audit' });
  mount(
    root,
    header,
    h('div', { class: 'grid-2-1' }, roundCard, rejCard),
    h(
      'div',
      { class: 'grid-2' },
      card('Global accuracy', 'Federated evaluation on clients’ held-out data, per round', charts.accuracy),
      card('Loss', 'Evaluation loss (solid) and mean local training loss (dashed)', charts.loss),
      card('Privacy budget', 'ε spent after each round (RDP accountant) against the budget', charts.privacy),
      card('Round duration', 'Seconds from cohort selection to the round’s end', charts.duration),
    ),
    participants,
    audit,
  );

  let detail: TaskDetail | undefined;
  let live: TaskLive | undefined;
  let disposed = false;

  const renderHeader = () => {
    if (!detail) return;
    const st = detail.status;
    const act = (label: string, action: string, kind = '') =>
      h(
        'button',
        {
          class: `btn ${kind}`,
          'data-action': action,
          onclick: async () => {
            if (action === 'abort' && !confirm(`Abort task ${detail!.name}? This cannot be undone.`)) return;
            try {
              await api('POST', `/api/tasks/${id}/${action}`);
              ctx.toast(`Task ${action === 'abort' ? 'aborted' : action === 'pause' ? 'paused' : 'started'}`);
              await loadDetail();
            } catch (e) {
              ctx.toast((e as Error).message, 'error');
            }
          },
        },
        label,
      );
    const never = detail.completedRounds === 0 && (detail.reason ?? '').startsWith('created');
    const actions = [
      st === 'paused' && act(never ? 'Start' : 'Resume', never ? 'start' : 'resume', 'btn-primary'),
      st === 'running' && act('Pause', 'pause'),
      (st === 'running' || st === 'paused') && act('Abort', 'abort', 'btn-danger'),
    ];
    const spec = detail.spec;
    mount(
      header,
      h('a', { href: '#/tasks', class: 'back' }, '← Tasks'),
      h(
        'div',
        { class: 'title-row' },
        h('h1', null, detail.name, ' ', badge(st)),
        h('div', { class: 'actions' }, actions),
      ),
      h(
        'p',
        { class: 'muted meta' },
        h('code', null, detail.id),
        ` · model v${detail.modelVersion} · ${spec.rounds} rounds · ${spec.clientsPerRound} per round (min ${spec.minClients}) · deadline ${spec.roundDeadlineSeconds} s`,
        spec.privacy && spec.privacy.mode !== 'off' ? ` · DP ${spec.privacy.mode}` : '',
        spec.he === true ? ' · HE' : '',
        detail.reason ? ` · ${detail.reason}` : '',
      ),
    );
  };

  const renderRound = () => {
    const r = live?.runner;
    const total = detail?.spec.rounds ?? r?.totalRounds ?? 0;
    const completed = live?.task.completedRounds ?? detail?.completedRounds ?? 0;
    const pct = total ? Math.round((100 * completed) / total) : 0;
    const submitted = new Set(r?.submitted ?? []);
    const connected = live?.connected ?? [];
    mount(
      roundCard,
      h('div', { class: 'card-head' }, h('h2', null, 'Current round'), r ? badge(r.state, `state-${r.state}`) : badge('no runner', 'idle')),
      h(
        'div',
        { class: 'round-stats' },
        stat('Round', r && r.roundId > 0 ? `${r.roundId}` : '—', 'round-id'),
        stat('Completed', `${completed} / ${total}`, 'completed'),
        stat('Deadline', r?.deadline && (r.state === 'training' || r.state === 'evaluating') ? until(r.deadline) : '—', 'deadline'),
        stat('Model', `v${live?.task.modelVersion ?? detail?.modelVersion ?? 0}`),
        stat('Connected', String(connected.length), 'connected'),
      ),
      h('div', { class: 'progress' }, progressBar(pct)),
      h('h3', null, 'Cohort ', h('span', { class: 'muted' }, r?.cohort.length ? `${submitted.size} of ${r.cohort.length} submitted` : '')),
      h(
        'div',
        { class: 'chips', 'data-testid': 'cohort' },
        (r?.cohort ?? []).map((c) => h('span', { class: `chip ${submitted.has(c) ? 'chip-ok' : 'chip-wait'}`, 'data-client': c, 'data-submitted': submitted.has(c) ? 'yes' : 'no' }, submitted.has(c) ? '✓ ' : '… ', c)),
        r?.cohort.length ? null : h('span', { class: 'muted' }, IDLE_TEXT[r?.state ?? ''] ?? '—'),
      ),
    );
    const rej = live?.rejections ?? [];
    const counts = detail?.rejections ?? {};
    mount(
      rejCard,
      h('div', { class: 'card-head' }, h('h2', null, 'Rejections'), h('span', { class: 'muted' }, `${Object.values(counts).reduce((a, b) => a + b, 0)} total`)),
      h('div', { class: 'chips' }, Object.entries(counts).map(([code, n]) => h('span', { class: 'chip chip-bad' }, `${code} × ${n}`))),
      rej.length === 0
        ? h('p', { class: 'muted empty' }, 'No rejected submissions.')
        : h(
            'table',
            { class: 'table compact' },
            h('thead', null, h('tr', null, h('th', null, 'When'), h('th', null, 'Round'), h('th', null, 'Client'), h('th', null, 'Code'))),
            h('tbody', null, rej.slice(0, 8).map((x) => h('tr', { title: x.message }, h('td', null, ago(x.at)), h('td', null, x.roundId ?? '—'), h('td', null, h('code', null, x.clientId ?? '—')), h('td', null, h('span', { class: 'code' }, x.code))))),
          ),
    );
  };

  const renderCharts = (rounds: RoundRow[], privacy: PrivacyReport) => {
    const ev = rounds.filter((r) => r.evalMetrics);
    const tr = rounds.filter((r) => r.status === 'completed' && r.trainMetrics);
    const accEval = { name: 'global (eval)', color: C.indigo, points: ev.filter((r) => Number.isFinite(r.evalMetrics!.accuracy)).map((r) => ({ x: r.roundId, y: r.evalMetrics!.accuracy! })) };
    // FedAvg reports the clients' example-weighted training metrics as train_<name>.
    const trainOf = (r: RoundRow, k: string) => r.trainMetrics?.[`train_${k}`] ?? r.trainMetrics?.[k];
    const accTrain = { name: 'local (train)', color: C.teal, dashed: true, points: tr.filter((r) => Number.isFinite(trainOf(r, 'accuracy'))).map((r) => ({ x: r.roundId, y: trainOf(r, 'accuracy')! })) };
    mount(charts.accuracy, chart({ series: [accEval, accTrain], yMin: 0, yMax: 1, xLabel: 'round', yFormat: (v) => v.toFixed(1), testId: 'chart-accuracy', empty: 'No evaluated round yet' }), legend([accEval, accTrain]));
    const lossEval = { name: 'eval', color: C.violet, points: ev.filter((r) => Number.isFinite(r.evalMetrics!.loss)).map((r) => ({ x: r.roundId, y: r.evalMetrics!.loss! })) };
    const lossTrain = { name: 'train', color: C.amber, dashed: true, points: tr.filter((r) => Number.isFinite(trainOf(r, 'loss'))).map((r) => ({ x: r.roundId, y: trainOf(r, 'loss')! })) };
    mount(charts.loss, chart({ series: [lossEval, lossTrain], yMin: 0, xLabel: 'round', yFormat: (v) => fmt(v, 2), testId: 'chart-loss' }), legend([lossEval, lossTrain]));
    if (privacy.mode === 'off' || !privacy.rounds) {
      mount(charts.privacy, chart({ series: [], empty: 'Differential privacy is off for this task', testId: 'chart-privacy' }));
    } else {
      const eps = { name: `ε (δ=${privacy.spent?.delta ?? ''})`, color: C.red, points: privacy.rounds.map((r) => ({ x: r.roundId, y: r.epsilon })) };
      const refs = privacy.budget ? [{ y: privacy.budget.epsilon, label: `budget ε=${privacy.budget.epsilon}`, color: C.slate }] : [];
      mount(charts.privacy, chart({ series: [eps], refs, yMin: 0, xLabel: 'round', yFormat: (v) => fmt(v, 2), testId: 'chart-privacy', empty: 'No round accounted yet' }), legend([eps]));
    }
    const ended = rounds.filter((r) => r.endedAt);
    const done = { name: 'completed', color: C.indigo, bars: true, points: ended.filter((r) => r.status === 'completed').map((r) => ({ x: r.roundId, y: (r.endedAt! - r.startedAt) / 1000 })) };
    const failed = { name: 'failed / interrupted', color: C.red, bars: true, points: ended.filter((r) => r.status !== 'completed').map((r) => ({ x: r.roundId, y: (r.endedAt! - r.startedAt) / 1000 })) };
    mount(charts.duration, chart({ series: [done, failed], yMin: 0, xLabel: 'round', yFormat: (v) => `${fmt(v, 1)}`, testId: 'chart-duration' }), legend([done, failed]));
  };

  const renderParticipants = (list: Participant[]) => {
    mount(
      participants,
      h('div', { class: 'card-head' }, h('h2', null, 'Participants'), h('span', { class: 'muted' }, `${list.filter((p) => p.connected).length} connected · ${list.length} seen`)),
      list.length === 0
        ? h('p', { class: 'muted empty' }, 'No client has joined this task yet.')
        : h(
            'table',
            { class: 'table' },
            h('thead', null, h('tr', null, ['', 'Client', 'Platform', 'Backend', 'Last seen', 'Rounds contributed', 'Cohorts'].map((t) => h('th', null, t)))),
            h(
              'tbody',
              null,
              list.map((p) =>
                h(
                  'tr',
                  { 'data-client': p.clientId },
                  h('td', null, h('span', { class: `dot ${p.connected ? 'dot-on' : 'dot-off'}`, title: p.connected ? 'connected' : 'offline' })),
                  h('td', null, h('code', null, p.clientId)),
                  h('td', null, p.platform ?? '—'),
                  h('td', null, p.backend ? h('span', { class: 'code' }, p.backend) : '—'),
                  h('td', null, p.connected ? 'now' : ago(p.lastSeen)),
                  h('td', { class: 'num' }, p.roundsContributed),
                  h('td', { class: 'num' }, p.cohorts),
                ),
              ),
            ),
          ),
    );
  };

  const renderAudit = (rows: AuditRow[]) => {
    const mine = rows.filter((r) => r.target === id).slice(0, 12);
    mount(audit, h('div', { class: 'card-head' }, h('h2', null, 'Audit log'), h('a', { href: '#/audit' }, 'all entries →')), auditTable(mine));
  };

  const loadDetail = async () => {
    detail = await api<TaskDetail>('GET', `/api/tasks/${id}`);
    renderHeader();
    renderRound();
  };
  const loadRounds = async () => {
    const [rounds, privacy, people, log] = await Promise.all([
      api<RoundRow[]>('GET', `/api/tasks/${id}/rounds`),
      api<PrivacyReport>('GET', `/api/tasks/${id}/privacy`),
      api<Participant[]>('GET', `/api/tasks/${id}/participants`),
      api<AuditRow[]>('GET', '/api/audit'),
    ]);
    if (disposed) return;
    renderCharts(rounds, privacy);
    renderParticipants(people);
    renderAudit(log);
  };

  await loadDetail();
  await loadRounds();

  const sock = await liveSocket();
  const onState = (snap: TaskLive) => {
    if (snap.task.id !== id) return;
    const statusChanged = live?.task.status !== snap.task.status;
    const roundChanged = live?.runner?.roundId !== snap.runner?.roundId || live?.runner?.state !== snap.runner?.state;
    live = snap;
    renderRound();
    if (statusChanged) void loadDetail().catch(() => undefined);
    if (roundChanged) void loadRounds().catch(() => undefined);
  };
  const onRound = (e: { taskId: string }) => {
    if (e.taskId === id) void Promise.all([loadDetail(), loadRounds()]).catch(() => undefined);
  };
  const onTasks = (e: { taskId: string }) => {
    if (e.taskId === id) void loadDetail().catch(() => undefined);
  };
  const subscribe = async () => {
    const r = (await sock.timeout(5000).emitWithAck('subscribe', id)) as { ok: boolean; state?: TaskLive };
    if (r.ok && r.state) onState(r.state);
  };
  sock.on('task:state', onState);
  sock.on('task:round', onRound);
  sock.on('tasks:changed', onTasks);
  sock.on('connect', subscribe);
  if (sock.connected) await subscribe().catch(() => undefined);
  const tick = window.setInterval(() => {
    const el = roundCard.querySelector('[data-stat="deadline"] .stat-value');
    const r = live?.runner;
    if (el && r?.deadline && (r.state === 'training' || r.state === 'evaluating')) el.textContent = until(r.deadline);
  }, 1000);
  return () => {
    disposed = true;
    window.clearInterval(tick);
    sock.off('task:state', onState);
    sock.off('task:round', onRound);
    sock.off('tasks:changed', onTasks);
    sock.off('connect', subscribe);
    sock.emit('unsubscribe');
  };
}

function card(title: string, subtitle: string, body: HTMLElement): HTMLElement {
  return h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', null, title)), h('p', { class: 'muted sub' }, subtitle), body);
}

function stat(label: string, value: string, key?: string): HTMLElement {
  return h('div', { class: 'stat', ...(key ? { 'data-stat': key } : {}) }, h('div', { class: 'stat-label' }, label), h('div', { class: 'stat-value' }, value));
}

function progressBar(pct: number): HTMLElement {
  const bar = h('div', { class: 'progress-bar' });
  bar.style.width = `${pct}%`;
  return bar;
}

/** The audit table used here and on the audit page. */
export function auditTable(rows: AuditRow[]): HTMLElement {
  if (rows.length === 0) return h('p', { class: 'muted empty' }, 'Nothing recorded yet.');
  return h(
    'table',
    { class: 'table compact', 'data-testid': 'audit-table' },
    h('thead', null, h('tr', null, ['When', 'Who', 'Action', 'Target', 'From', 'Details'].map((t) => h('th', null, t)))),
    h(
      'tbody',
      null,
      rows.map((r) =>
        h(
          'tr',
          null,
          h('td', { title: time(r.at) }, ago(r.at)),
          h('td', null, r.actor),
          h('td', null, h('span', { class: 'code' }, r.action)),
          h('td', null, r.target ? h('code', null, r.target) : '—'),
          h('td', null, r.ip ?? '—'),
          h('td', { class: 'details' }, r.details ?? ''),
        ),
      ),
    ),
  );
}
