/** Entry of the Tessera console (served at /console): login, navigation and hash routing. */
import { api, ApiError, setCsrf, setUnauthorizedHandler, type SessionInfo } from './api.js';
import { h, mount, s } from './dom.js';
import { closeLive } from './live.js';
import { taskPage } from './task-page.js';
import { accessPage, auditPage, newTaskPage, tasksPage, type Ctx } from './views.js';

const root = document.getElementById('app')!;
let cleanup: () => void = () => undefined;
let session: SessionInfo | undefined;

function logo(): SVGSVGElement {
  // A 3×3 mosaic: Tessera's tiles.
  const tiles = [
    [0, 0, '#818cf8'],
    [1, 0, '#4f46e5'],
    [2, 0, '#a5b4fc'],
    [0, 1, '#4f46e5'],
    [1, 1, '#14b8a6'],
    [2, 1, '#6366f1'],
    [0, 2, '#a5b4fc'],
    [1, 2, '#6366f1'],
    [2, 2, '#4f46e5'],
  ] as const;
  return s('svg', { viewBox: '0 0 30 30', width: 26, height: 26, class: 'logo' }, tiles.map(([x, y, c]) => s('rect', { x: x * 10 + 1, y: y * 10 + 1, width: 8, height: 8, rx: 2, fill: c })));
}

const toasts = h('div', { class: 'toasts', 'aria-live': 'polite' });
function toast(message: string, kind: 'ok' | 'error' = 'ok'): void {
  const t = h('div', { class: `toast toast-${kind}` }, message);
  toasts.append(t);
  window.setTimeout(() => t.remove(), kind === 'error' ? 7000 : 3500);
}

function showLogin(message?: string): void {
  cleanup();
  cleanup = () => undefined;
  closeLive();
  session = undefined;
  setCsrf(undefined);
  const err = h('p', { class: 'error', 'data-testid': 'login-error' }, message ?? '');
  const form = h(
    'form',
    { class: 'login card', 'data-testid': 'login' },
    h('div', { class: 'login-brand' }, logo(), h('span', null, 'Tessera')),
    h('h1', null, 'Sign in to the console'),
    h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'User'), h('input', { name: 'username', value: 'admin', autocomplete: 'username', required: true })),
    h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'Password'), h('input', { name: 'password', type: 'password', autocomplete: 'current-password' })),
    h('details', null, h('summary', null, 'Use an admin token instead'), h('textarea', { name: 'token', rows: 3, placeholder: 'tessera token --role admin --sub you' })),
    h('button', { class: 'btn btn-primary wide', type: 'submit' }, 'Sign in'),
    err,
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    const token = String(fd.get('token') ?? '').trim();
    const body = token ? { token } : { username: String(fd.get('username')), password: String(fd.get('password')) };
    err.textContent = '';
    api<SessionInfo>('POST', '/api/login', body, { quiet401: true })
      .then((sess) => start(sess))
      .catch((e: unknown) => {
        err.textContent = e instanceof ApiError && e.status === 429 ? 'Too many attempts. Wait a minute and try again.' : e instanceof ApiError && e.status === 401 ? 'Wrong user name or password.' : (e as Error).message;
      });
  });
  mount(root, h('div', { class: 'login-page' }, form), toasts);
}

function start(sess: SessionInfo): void {
  session = sess;
  setCsrf(sess.csrfToken);
  const main = h('main', { class: 'content' });
  const nav = h('nav', { class: 'nav' });
  const logout = h(
    'button',
    {
      class: 'btn btn-ghost',
      'data-testid': 'logout',
      onclick: () => {
        void api('POST', '/api/logout').finally(() => showLogin('Signed out.'));
      },
    },
    'Sign out',
  );
  mount(root, h('header', { class: 'topbar' }, h('a', { class: 'brand', href: '#/tasks' }, logo(), h('span', null, 'Tessera'), h('span', { class: 'brand-sub' }, 'console')), nav, h('div', { class: 'who' }, h('span', { class: 'muted' }, sess.actor), logout)), main, toasts);
  const ctx: Ctx = { session: sess, navigate: (hash) => (location.hash = hash), toast };
  const route = async () => {
    cleanup();
    cleanup = () => undefined;
    const hash = location.hash || '#/tasks';
    const parts = hash.replace(/^#\/?/, '').split('/');
    mount(
      nav,
      [
        ['#/tasks', 'Tasks'],
        ['#/new', 'New task'],
        ['#/access', 'Access'],
        ['#/audit', 'Audit log'],
      ].map(([href, label]) => h('a', { href: href!, class: hash.startsWith(href!) || (href === '#/tasks' && parts[0] === 'tasks') ? 'active' : '' }, label!)),
    );
    mount(main, h('p', { class: 'muted' }, 'Loading…'));
    try {
      if (parts[0] === 'tasks' && parts[1]) cleanup = await taskPage(main, decodeURIComponent(parts[1]), ctx);
      else if (parts[0] === 'new') cleanup = newTaskPage(main, ctx);
      else if (parts[0] === 'access') cleanup = await accessPage(main, ctx);
      else if (parts[0] === 'audit') cleanup = await auditPage(main);
      else cleanup = await tasksPage(main, ctx);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return;
      mount(main, h('section', { class: 'card' }, h('h2', null, 'Something went wrong'), h('p', { class: 'error' }, (e as Error).message)));
    }
  };
  window.onhashchange = () => void route();
  void route();
}

setUnauthorizedHandler(() => {
  if (session) showLogin('Your session ended. Sign in again.');
});

api<SessionInfo>('GET', '/api/session', undefined, { quiet401: true }).then(
  (sess) => start(sess),
  () => showLogin(),
);
