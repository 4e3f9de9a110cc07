/** Console pages other than the task page: task list, new task form, access (enrollment, devices, revocation, keys), audit. */
import { api, ApiError, type AuditRow, type Device, type Enrollment, type Revocation, type SessionInfo, type TaskSummary } from './api.js';
import { ago, badge, h, mount, time } from './dom.js';
import { liveSocket } from './live.js';
import { auditTable } from './task-page.js';

export interface Ctx {
  session: SessionInfo;
  navigate(hash: string): void;
  toast(message: string, kind?: 'ok' | 'error'): void;
}

// ---- task list ---------------------------------------------------------------------------------

export async function tasksPage(root: HTMLElement, ctx: Ctx): Promise<() => void> {
  const body = h('div');
  mount(root, h('div', { class: 'title-row' }, h('h1', null, 'Tasks'), h('a', { class: 'btn btn-primary', href: '#/new', 'data-testid': 'new-task' }, '+ New task')), body);
  const load = async () => {
    const tasks = await api<TaskSummary[]>('GET', '/api/tasks');
    mount(
      body,
      tasks.length === 0
        ? h('section', { class: 'card empty-state' }, h('h2', null, 'No task yet'), h('p', { class: 'muted' }, 'Create a task, enroll clients, and start it.'), h('a', { class: 'btn btn-primary', href: '#/new' }, 'Create a task'))
        : h(
            'section',
            { class: 'card' },
            h(
              'table',
              { class: 'table', 'data-testid': 'task-list' },
              h('thead', null, h('tr', null, ['Task', 'Status', 'Round', 'Progress', 'Model', 'Created'].map((t) => h('th', null, t)))),
              h(
                'tbody',
                null,
                [...tasks].reverse().map((t) => {
                  const total = t.runner?.totalRounds;
                  return h(
                    'tr',
                    { class: 'clickable', 'data-task': t.id, onclick: () => ctx.navigate(`#/tasks/${t.id}`) },
                    h('td', null, h('a', { href: `#/tasks/${t.id}` }, t.name), h('div', { class: 'muted small' }, h('code', null, t.id))),
                    h('td', null, badge(t.status)),
                    h('td', null, t.runner ? `${t.runner.roundId || '—'} · ${t.runner.state}` : '—'),
                    h('td', null, total ? `${t.completedRounds} / ${total}` : String(t.completedRounds)),
                    h('td', null, `v${t.modelVersion}`),
                    h('td', { title: time(t.createdAt) }, ago(t.createdAt)),
                  );
                }),
              ),
            ),
          ),
    );
  };
  await load();
  const sock = await liveSocket();
  const onChange = () => void load().catch(() => undefined);
  sock.on('tasks:changed', onChange);
  const timer = window.setInterval(onChange, 5000);
  return () => {
    sock.off('tasks:changed', onChange);
    window.clearInterval(timer);
  };
}

// ---- new task form --------------------------------------------------------------------------------

function field(label: string, input: HTMLElement, hint?: string): HTMLElement {
  return h('label', { class: 'field' }, h('span', { class: 'field-label' }, label), input, hint ? h('span', { class: 'hint' }, hint) : null);
}
const num = (name: string, value: number, attrs: Record<string, string | number> = {}) => h('input', { type: 'number', name, value, step: 'any', ...attrs });
const select = (name: string, options: [string, string][], value?: string) =>
  h(
    'select',
    { name },
    options.map(([v, t]) => h('option', { value: v, selected: v === value }, t)),
  );

/** tfjs model.json (`{ modelTopology, weightsManifest }`) or a bare `model.toJSON()` topology → the task's model field. */
export function modelFromJson(text: string): Record<string, unknown> {
  const parsed = JSON.parse(text) as Record<string, unknown>;
  if (parsed && typeof parsed === 'object' && 'modelTopology' in parsed) return { topology: parsed.modelTopology as Record<string, unknown> };
  if (parsed && typeof parsed === 'object' && ('class_name' in parsed || 'config' in parsed)) return { topology: parsed };
  throw new Error('not a tfjs Layers model: expected model.json with modelTopology, or a model.toJSON() topology');
}

export function newTaskPage(root: HTMLElement, ctx: Ctx): () => void {
  const he = ctx.session.features.he;
  const form = h(
    'form',
    { class: 'card form', 'data-testid': 'task-form' },
    h('h2', null, 'Model and data'),
    h(
      'div',
      { class: 'form-grid' },
      field('Name', h('input', { name: 'name', value: 'mnist-digits', required: true, maxlength: 200 })),
      field('Model', select('model', [['mlp', 'Preset: MLP (28×28×1)'], ['cnn', 'Preset: CNN (28×28×1)'], ['upload', 'Upload a tfjs model JSON…']], 'mlp')),
      field('Model JSON', h('input', { type: 'file', name: 'modelFile', accept: '.json,application/json', disabled: true }), 'model.json from tfjs, or model.toJSON(); weights are initialised by the server'),
      field('Strategy', select('strategy', ctx.session.features.strategies.map((x) => [x, x]), 'fedavg')),
    ),
    h('h2', null, 'Local training'),
    h(
      'div',
      { class: 'form-grid' },
      field('Epochs', num('epochs', 1, { min: 1, max: 1000, step: 1 })),
      field('Batch size', num('batchSize', 32, { min: 1, step: 1 })),
      field('Learning rate', num('learningRate', 0.001, { min: 0 })),
      field('Optimizer', select('optimizer', [['adam', 'Adam'], ['sgd', 'SGD'], ['momentum', 'Momentum'], ['rmsprop', 'RMSProp']], 'adam')),
    ),
    h('h2', null, 'Rounds'),
    h(
      'div',
      { class: 'form-grid' },
      field('Rounds', num('rounds', 5, { min: 1, step: 1 })),
      field('Cohort size', num('clientsPerRound', 3, { min: 1, step: 1 }), 'clients per round'),
      field('Minimum clients', num('minClients', 2, { min: 1, step: 1 }), 'valid updates a round needs'),
      field('Over-selection', num('overSelection', 1, { min: 1, max: 10 }), 'cohort × factor, for stragglers'),
      field('Round deadline (s)', num('roundDeadlineSeconds', 120, { min: 1 })),
      field('Wait for clients (s)', num('waitForClientsSeconds', 600, { min: 1 })),
      field('Evaluate every', num('evaluateEvery', 1, { min: 0, step: 1 }), 'rounds; 0 = never'),
    ),
    h('h2', null, 'Differential privacy'),
    h(
      'div',
      { class: 'form-grid' },
      field('Mode', select('dpMode', ctx.session.features.privacyModes.map((x) => [x, x === 'off' ? 'off' : x]), 'off')),
      field('Noise multiplier z', num('noiseMultiplier', 1.1, { min: 0 })),
      field('Clip norm C', num('clipNorm', 1, { min: 0 })),
      field('Adaptive clipping', h('input', { type: 'checkbox', name: 'adaptiveClip' })),
      field('Budget ε', h('input', { type: 'number', name: 'budgetEpsilon', step: 'any', min: 0, placeholder: 'none' }), 'stop before ε would exceed it'),
      field('δ', num('delta', 1e-5, { min: 0 })),
    ),
    h('h2', null, 'Encryption'),
    h(
      'div',
      { class: 'form-grid' },
      field(
        'Homomorphic encryption (CKKS)',
        h('input', { type: 'checkbox', name: 'he', disabled: !he.available }),
        he.available ? 'updates are encrypted; a key holder decrypts only round aggregates' : 'not available in this server build (the task schema has no he field yet)',
      ),
    ),
    h('div', { class: 'form-actions' }, h('label', { class: 'inline' }, h('input', { type: 'checkbox', name: 'startNow', checked: true }), ' Start immediately'), h('button', { class: 'btn btn-primary', type: 'submit' }, 'Create task')),
    h('p', { class: 'error', 'data-testid': 'form-error' }),
  );
  const el = <T extends HTMLElement>(name: string) => form.querySelector(`[name="${name}"]`) as T;
  const dpInputs = ['noiseMultiplier', 'clipNorm', 'adaptiveClip', 'budgetEpsilon', 'delta'];
  const syncDp = () => {
    const off = el<HTMLSelectElement>('dpMode').value === 'off';
    for (const n of dpInputs) el<HTMLInputElement>(n).disabled = off;
  };
  el<HTMLSelectElement>('dpMode').addEventListener('change', syncDp);
  el<HTMLSelectElement>('model').addEventListener('change', () => {
    el<HTMLInputElement>('modelFile').disabled = el<HTMLSelectElement>('model').value !== 'upload';
  });
  syncDp();
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const error = form.querySelector('.error')!;
    error.textContent = '';
    const v = (n: string) => el<HTMLInputElement>(n).value;
    const n = (k: string) => Number(v(k));
    void (async () => {
      try {
        let model: Record<string, unknown> = { preset: v('model') };
        if (v('model') === 'upload') {
          const file = el<HTMLInputElement>('modelFile').files?.[0];
          if (!file) throw new Error('choose a model JSON file');
          model = modelFromJson(await file.text());
        }
        const spec: Record<string, unknown> = {
          name: v('name'),
          model,
          strategy: { name: v('strategy') },
          train: { epochs: n('epochs'), batchSize: n('batchSize'), learningRate: n('learningRate'), optimizer: v('optimizer') },
          rounds: n('rounds'),
          clientsPerRound: n('clientsPerRound'),
          minClients: n('minClients'),
          overSelection: n('overSelection'),
          roundDeadlineSeconds: n('roundDeadlineSeconds'),
          waitForClientsSeconds: n('waitForClientsSeconds'),
          evaluateEvery: n('evaluateEvery'),
        };
        if (v('dpMode') !== 'off') {
          spec.privacy = {
            mode: v('dpMode'),
            noiseMultiplier: n('noiseMultiplier'),
            clipNorm: n('clipNorm'),
            ...(el<HTMLInputElement>('adaptiveClip').checked ? { adaptiveClip: true } : {}),
            ...(v('budgetEpsilon') ? { budget: { epsilon: n('budgetEpsilon'), delta: n('delta') } } : { delta: n('delta') }),
          };
        }
        if (he.available && el<HTMLInputElement>('he').checked) spec.he = he.value;
        const start = el<HTMLInputElement>('startNow').checked;
        const r = await api<{ id: string }>('POST', `/api/tasks${start ? '' : '?start=false'}`, spec);
        ctx.toast(`Task ${r.id} created`);
        ctx.navigate(`#/tasks/${r.id}`);
      } catch (e) {
        error.textContent = e instanceof ApiError ? `${e.code}: ${e.message}` : (e as Error).message;
      }
    })();
  });
  mount(root, h('div', { class: 'title-row' }, h('h1', null, 'New task')), form);
  return () => undefined;
}

// ---- access: enrollment tokens, devices, revocation, keys --------------------------------------------

export async function accessPage(root: HTMLElement, ctx: Ctx): Promise<() => void> {
  const created = h('div', { 'data-testid': 'new-token' });
  const enrollList = h('section', { class: 'card' });
  const devices = h('section', { class: 'card' });
  const revocations = h('section', { class: 'card' });
  const keys = h('section', { class: 'card' });
  const tasks = await api<TaskSummary[]>('GET', '/api/tasks');

  const form = h(
    'form',
    { class: 'card form', 'data-testid': 'enroll-form' },
    h('h2', null, 'New enrollment token'),
    h('p', { class: 'muted sub' }, 'Single use and expiring. A device exchanges it at POST /api/enroll for a session JWT and a refresh token.'),
    h(
      'div',
      { class: 'form-grid' },
      field('Role', select('role', [['client', 'client (trains)'], ['keyholder', 'key holder (decrypts aggregates)']], 'client')),
      field('Valid for', select('ttl', [['1h', '1 hour'], ['1d', '1 day'], ['7d', '7 days'], ['30d', '30 days']], '1d')),
      field('Client id', h('input', { name: 'clientId', placeholder: 'chosen by the device', maxlength: 64 }), 'optional: bind the token to one id'),
      field('Note', h('input', { name: 'note', placeholder: 'e.g. hospital A, ward 3', maxlength: 200 })),
    ),
    h(
      'fieldset',
      { class: 'scope' },
      h('legend', null, 'Task scope'),
      h('label', { class: 'inline' }, h('input', { type: 'checkbox', name: 'anyTask', checked: true }), ' any task'),
      tasks.map((t) => h('label', { class: 'inline' }, h('input', { type: 'checkbox', name: 'task', value: t.id }), ` ${t.name} `, h('code', { class: 'small' }, t.id))),
    ),
    h('div', { class: 'form-actions' }, h('button', { class: 'btn btn-primary', type: 'submit' }, 'Create token')),
    created,
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    const scoped = fd.getAll('task').map(String);
    const anyTask = (form.querySelector('[name="anyTask"]') as HTMLInputElement).checked;
    const body = {
      role: String(fd.get('role')),
      ttl: String(fd.get('ttl')),
      ...(fd.get('clientId') ? { clientId: String(fd.get('clientId')) } : {}),
      ...(fd.get('note') ? { note: String(fd.get('note')) } : {}),
      ...(anyTask ? {} : { tasks: scoped }),
    };
    void api<Enrollment>('POST', '/api/enrollments', body)
      .then((e) => {
        const box = h('input', { class: 'token', readonly: true, value: e.token ?? '', 'data-testid': 'enrollment-token' });
        mount(
          created,
          h(
            'div',
            { class: 'token-box' },
            h('div', null, h('strong', null, 'Copy this token now'), h('span', { class: 'muted' }, ' — it is shown once and stored only as a hash.')),
            h(
              'div',
              { class: 'token-row' },
              box,
              h(
                'button',
                {
                  class: 'btn',
                  type: 'button',
                  onclick: () => {
                    box.select();
                    void navigator.clipboard?.writeText(box.value).then(
                      () => ctx.toast('Copied'),
                      () => ctx.toast('Select the token and copy it', 'error'),
                    );
                  },
                },
                'Copy',
              ),
            ),
          ),
        );
        void loadLists();
      })
      .catch((e: Error) => ctx.toast(e.message, 'error'));
  });

  const revokeForm = h(
    'form',
    { class: 'card form', 'data-testid': 'revoke-form' },
    h('h2', null, 'Revoke a token'),
    h('p', { class: 'muted sub' }, 'By client id (all its tokens and device sessions), by token id (jti or device session), or paste a JWT or refresh token. Takes effect at the next connection or refresh; live sockets are closed now.'),
    h('div', { class: 'form-grid' }, field('Revoke', select('kind', [['sub', 'client id (sub)'], ['jti', 'token id (jti / device)'], ['token', 'pasted token']], 'sub')), field('Value', h('input', { name: 'value', required: true })), field('Reason', h('input', { name: 'reason', maxlength: 200 }))),
    h('div', { class: 'form-actions' }, h('button', { class: 'btn btn-danger', type: 'submit' }, 'Revoke')),
  );
  revokeForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const fd = new FormData(revokeForm);
    const kind = String(fd.get('kind'));
    void revoke({ [kind]: String(fd.get('value')).trim(), ...(fd.get('reason') ? { reason: String(fd.get('reason')) } : {}) }).then(() => revokeForm.reset());
  });

  const revoke = async (body: Record<string, string>) => {
    try {
      const r = await api<Revocation & { socketsClosed: number }>('POST', '/api/revocations', body);
      ctx.toast(`Revoked ${r.kind} ${r.value}${r.socketsClosed ? ` · ${r.socketsClosed} connection(s) closed` : ''}`);
      await loadLists();
    } catch (e) {
      ctx.toast((e as Error).message, 'error');
    }
  };

  const loadLists = async () => {
    const [enrollments, devs, revs, jwks] = await Promise.all([
      api<Enrollment[]>('GET', '/api/enrollments'),
      api<Device[]>('GET', '/api/devices'),
      api<Revocation[]>('GET', '/api/revocations'),
      api<{ keys: { kid: string }[] }>('GET', '/.well-known/jwks.json'),
    ]);
    mount(
      enrollList,
      h('div', { class: 'card-head' }, h('h2', null, 'Enrollment tokens')),
      enrollments.length === 0
        ? h('p', { class: 'muted empty' }, 'None yet.')
        : h(
            'table',
            { class: 'table compact', 'data-testid': 'enrollments' },
            h('thead', null, h('tr', null, ['Id', 'Role', 'Tasks', 'Client', 'Note', 'Expires', 'Status', ''].map((t) => h('th', null, t)))),
            h(
              'tbody',
              null,
              enrollments.map((e) =>
                h(
                  'tr',
                  { 'data-enrollment': e.id },
                  h('td', null, h('code', null, e.id)),
                  h('td', null, e.role),
                  h('td', null, e.tasks ? e.tasks.join(', ') || 'none' : 'any'),
                  h('td', null, e.usedBy ?? e.clientId ?? '—'),
                  h('td', null, e.note ?? ''),
                  h('td', { title: time(e.expiresAt) }, time(e.expiresAt)),
                  h('td', null, badge(e.status)),
                  h('td', null, e.status === 'unused' ? h('button', { class: 'btn btn-small', onclick: () => void api('POST', `/api/enrollments/${e.id}/revoke`).then(loadLists, (x: Error) => ctx.toast(x.message, 'error')) }, 'Revoke') : null),
                ),
              ),
            ),
          ),
    );
    mount(
      devices,
      h('div', { class: 'card-head' }, h('h2', null, 'Enrolled devices'), h('span', { class: 'muted' }, 'refresh tokens handed out at enrollment')),
      devs.length === 0
        ? h('p', { class: 'muted empty' }, 'No device has enrolled yet.')
        : h(
            'table',
            { class: 'table compact', 'data-testid': 'devices' },
            h('thead', null, h('tr', null, ['Client', 'Role', 'Device session', 'Enrolled', 'Last refresh', 'From', 'Status', ''].map((t) => h('th', null, t)))),
            h(
              'tbody',
              null,
              devs.map((d) =>
                h(
                  'tr',
                  { 'data-device': d.id, 'data-client': d.sub },
                  h('td', null, h('code', null, d.sub)),
                  h('td', null, d.role),
                  h('td', null, h('code', { class: 'small' }, d.id)),
                  h('td', null, ago(d.createdAt)),
                  h('td', null, ago(d.lastUsedAt)),
                  h('td', null, d.lastIp ?? '—'),
                  h('td', null, badge(d.status)),
                  h(
                    'td',
                    { class: 'row-actions' },
                    d.status === 'active'
                      ? h('button', { class: 'btn btn-small btn-danger', 'data-action': 'revoke-client', onclick: () => confirm(`Revoke every token of client ${d.sub}?`) && void revoke({ sub: d.sub, reason: 'revoked from the console' }) }, 'Revoke client')
                      : null,
                  ),
                ),
              ),
            ),
          ),
    );
    mount(
      revocations,
      h('div', { class: 'card-head' }, h('h2', null, 'Revocations')),
      revs.length === 0
        ? h('p', { class: 'muted empty' }, 'Nothing revoked.')
        : h(
            'table',
            { class: 'table compact', 'data-testid': 'revocations' },
            h('thead', null, h('tr', null, ['When', 'Kind', 'Value', 'By', 'Reason'].map((t) => h('th', null, t)))),
            h('tbody', null, revs.map((r) => h('tr', null, h('td', null, ago(r.at)), h('td', null, r.kind), h('td', null, h('code', null, r.value)), h('td', null, r.actor), h('td', null, r.reason ?? '')))),
          ),
    );
    mount(
      keys,
      h(
        'div',
        { class: 'card-head' },
        h('h2', null, 'Signing keys'),
        h(
          'button',
          {
            class: 'btn',
            onclick: () => {
              if (!confirm('Rotate the JWT signing key? Tokens signed with the old key stay valid until they expire.')) return;
              void api<{ kid: string }>('POST', '/api/keys/rotate').then(
                (r) => {
                  ctx.toast(`New signing key ${r.kid}`);
                  void loadLists();
                },
                (e: Error) => ctx.toast(e.message, 'error'),
              );
            },
          },
          'Rotate key',
        ),
      ),
      h('p', { class: 'muted sub' }, 'Published at ', h('a', { href: '/.well-known/jwks.json', target: '_blank' }, '/.well-known/jwks.json'), '; the first is current, the others verify tokens they signed until those expire.'),
      h('ul', { class: 'keys' }, jwks.keys.map((k, i) => h('li', null, h('code', null, k.kid), i === 0 ? badge('current', 'ok') : badge('retired', 'idle')))),
    );
  };
  mount(root, h('div', { class: 'title-row' }, h('h1', null, 'Access')), h('div', { class: 'grid-2' }, form, revokeForm), enrollList, devices, h('div', { class: 'grid-2' }, revocations, keys));
  await loadLists();
  return () => undefined;
}

// ---- audit -------------------------------------------------------------------------------------------

export async function auditPage(root: HTMLElement): Promise<() => void> {
  const rows = await api<AuditRow[]>('GET', '/api/audit');
  mount(root, h('div', { class: 'title-row' }, h('h1', null, 'Audit log'), h('span', { class: 'muted' }, `latest ${rows.length} entries`)), h('section', { class: 'card' }, auditTable(rows)));
  return () => undefined;
}
