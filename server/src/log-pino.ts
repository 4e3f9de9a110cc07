import { pino, stdTimeFunctions, type Logger as Pino } from 'pino';
import type { Logger } from './log.js';

/** Field names whose values never reach a log line, at any depth pino's redaction reaches. */
const SECRET_KEYS = ['token', 'accessToken', 'refreshToken', 'password', 'authorization', 'cookie', 'csrfToken', 'secret'];
const REDACT = [...SECRET_KEYS, ...SECRET_KEYS.map((k) => `*.${k}`), 'headers.authorization', 'headers.cookie', 'req.headers.authorization', 'req.headers.cookie'];

/** JWTs and Tessera's own secret formats (enrollment `tse_…`, refresh `tsr_…`), wherever they appear in text. */
const SECRET_TEXT = /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*|\bts[er]_[A-Za-z0-9_-]{16,}/g;

/** Replaces anything that looks like a token in free text. */
export function redactSecrets(text: string): string {
  return text.replace(SECRET_TEXT, '[Redacted]');
}

function scrub(fields: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!fields) return {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) out[k] = typeof v === 'string' ? redactSecrets(v) : v;
  return out;
}

/**
 * The Logger interface backed by pino: one JSON object per line with `time` (ISO), `level` (name),
 * `msg` and fields; secrets are redacted by key and by shape.
 */
export function createPinoLogger(opts: { write?: (line: string) => void; bindings?: Record<string, unknown>; level?: string } = {}): Logger {
  const destination = opts.write ? { write: (s: string) => opts.write!(s.endsWith('\n') ? s.slice(0, -1) : s) } : pino.destination({ dest: 1, sync: true });
  const root = pino(
    {
      level: opts.level ?? process.env.TESSERA_LOG_LEVEL ?? 'info',
      base: { service: 'tessera-server' },
      timestamp: stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT, censor: '[Redacted]' },
    },
    destination,
  );
  return wrap(opts.bindings ? root.child(opts.bindings) : root);
}

function wrap(p: Pino): Logger {
  return {
    info: (m, f) => p.info(scrub(f), redactSecrets(m)),
    warn: (m, f) => p.warn(scrub(f), redactSecrets(m)),
    error: (m, f) => p.error(scrub(f), redactSecrets(m)),
    child: (b) => wrap(p.child(b)),
  };
}
