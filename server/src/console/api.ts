/** The console's REST client: same-origin fetch with the session cookie and the CSRF header on writes. */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let csrfToken: string | undefined;

export function setCsrf(token: string | undefined): void {
  csrfToken = token;
}

/** Called when a request comes back 401 (session gone): the app shows the login form. */
let onUnauthorized: () => void = () => undefined;
export function setUnauthorizedHandler(fn: () => void): void {
  onUnauthorized = fn;
}

/** Calls the API; throws ApiError with the server's error code and message. */
export async function api<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, opts: { quiet401?: boolean } = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['x-csrf-token'] = csrfToken;
  const res = await fetch(path, { method, headers, credentials: 'same-origin', ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  if (!res.ok) {
    const err = (data as { error?: { code?: string; message?: string } } | null)?.error;
    if (res.status === 401 && !opts.quiet401) onUnauthorized();
    throw new ApiError(res.status, err?.code ?? `HTTP_${res.status}`, err?.message ?? res.statusText);
  }
  return data as T;
}

// ---- shapes the console reads (a subset of what the server sends) ----

export interface Features {
  he: { available: boolean; value?: unknown };
  strategies: string[];
  privacyModes: string[];
}

export interface SessionInfo {
  actor: string;
  via: 'cookie' | 'bearer';
  csrfToken?: string;
  expiresAt: number;
  features: Features;
}

export interface RunnerStatus {
  state: string;
  roundId: number;
  modelVersion: number;
  completedRounds: number;
  totalRounds: number;
  cohort: string[];
  submitted: string[];
  deadline: number | null;
}

export interface TaskSummary {
  id: string;
  name: string;
  status: string;
  modelVersion: number;
  completedRounds: number;
  reason: string | null;
  createdAt: number;
  runner?: RunnerStatus;
}

export interface TaskDetail extends TaskSummary {
  spec: Record<string, unknown> & { rounds: number; clientsPerRound: number; minClients: number; roundDeadlineSeconds: number; privacy?: { mode: string; budget?: { epsilon: number; delta: number } } };
  rejections: Record<string, number>;
}

export interface RoundRow {
  roundId: number;
  status: string;
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

export interface PrivacyReport {
  mode: string;
  budget?: { epsilon: number; delta: number } | null;
  spent?: { epsilon: number; delta: number; rounds: number };
  rounds?: { roundId: number; epsilon: number; delta: number; clipNorm: number; noiseMultiplier: number }[];
}

export interface RejectionRow {
  at: number;
  roundId: number | null;
  clientId: string | null;
  code: string;
  message: string;
}

export interface TaskLive {
  task: Omit<TaskSummary, 'createdAt' | 'runner'>;
  runner: RunnerStatus | null;
  connected: { clientId: string; platform: string; backend: string }[];
  rejections: RejectionRow[];
  at: number;
}

export interface Participant {
  clientId: string;
  platform: string | null;
  backend: string | null;
  lastSeen: number | null;
  roundsContributed: number;
  cohorts: number;
  connected: boolean;
}

export interface AuditRow {
  id: number;
  at: number;
  actor: string;
  action: string;
  target: string | null;
  details: string | null;
  ip: string | null;
}

export interface Enrollment {
  id: string;
  role: string;
  tasks?: string[];
  clientId: string | null;
  note: string | null;
  createdAt: number;
  createdBy: string;
  expiresAt: number;
  usedAt: number | null;
  usedBy: string | null;
  status: string;
  token?: string;
}

export interface Device {
  id: string;
  sub: string;
  role: string;
  tasks?: string[];
  createdAt: number;
  lastUsedAt: number | null;
  lastIp: string | null;
  status: string;
}

export interface Revocation {
  id: number;
  kind: string;
  value: string;
  at: number;
  actor: string;
  reason: string | null;
}
