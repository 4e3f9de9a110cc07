import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { decodeJwt } from 'jose';
import { ErrorCode, TesseraError, toErrorBody } from '@tessera/protocol';

interface Stored {
  server: string;
  clientId: string;
  refreshToken: string;
  accessToken: string;
}

async function post(server: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  let res: Response;
  try {
    res = await fetch(new URL(path, server), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  } catch (e) {
    throw new TesseraError(ErrorCode.INTERNAL, `server ${server} unreachable: ${(e as Error).message}`);
  }
  const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok) {
    const err = json.error as { code?: ErrorCode; message?: string } | undefined;
    throw new TesseraError(err?.code ?? ErrorCode.UNAUTHORIZED, err?.message ?? `${path} answered ${res.status}`);
  }
  return json;
}

/**
 * A device's credentials: a short session JWT plus the refresh token it was enrolled with,
 * kept in a file (mode 0600) so a restarted client resumes without a new enrollment token.
 * `token()` refreshes the JWT when it is about to expire (on every socket.io (re)connection).
 */
export class DeviceCredentials {
  private constructor(
    private readonly file: string | undefined,
    private state: Stored,
  ) {}

  /** Redeems a single-use enrollment token (POST /api/enroll). */
  static async enroll(server: string, enrollmentToken: string, opts: { clientId?: string; file?: string } = {}): Promise<DeviceCredentials> {
    const r = await post(server, '/api/enroll', { token: enrollmentToken, ...(opts.clientId ? { clientId: opts.clientId } : {}) });
    const c = new DeviceCredentials(opts.file, { server, clientId: String(r.clientId), refreshToken: String(r.refreshToken), accessToken: String(r.accessToken) });
    c.save();
    return c;
  }

  /** Loads saved credentials, or undefined when the file does not exist. */
  static load(file: string): DeviceCredentials | undefined {
    if (!existsSync(file)) return undefined;
    try {
      return new DeviceCredentials(file, JSON.parse(readFileSync(file, 'utf8')) as Stored);
    } catch (e) {
      throw new TesseraError(ErrorCode.INVALID_CONFIG, `cannot read device credentials ${file}: ${(e as Error).message}`);
    }
  }

  get clientId(): string {
    return this.state.clientId;
  }

  get server(): string {
    return this.state.server;
  }

  private save(): void {
    if (this.file) writeFileSync(this.file, JSON.stringify(this.state), { mode: 0o600 });
  }

  /** A session JWT valid for at least `marginSeconds` more, refreshed (POST /api/token/refresh) when needed. */
  async token(marginSeconds = 60): Promise<string> {
    const exp = decodeJwt(this.state.accessToken).exp ?? 0;
    if (exp - Date.now() / 1000 > marginSeconds) return this.state.accessToken;
    try {
      const r = await post(this.state.server, '/api/token/refresh', { refreshToken: this.state.refreshToken });
      this.state = { ...this.state, accessToken: String(r.accessToken) };
      this.save();
      return this.state.accessToken;
    } catch (e) {
      const b = toErrorBody(e);
      throw new TesseraError(b.code, `token refresh refused: ${b.message}`);
    }
  }
}
