import { createPinoLogger } from './log-pino.js';

/** Minimal structured logger: human lines by default, JSON lines (pino, secrets redacted) with TESSERA_LOG_FORMAT=json. */
export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(bindings: Record<string, unknown>): Logger;
}

type Level = 'info' | 'warn' | 'error';

/** Creates a logger writing to `write` (stdout by default). `silent` drops everything (tests). */
export function createLogger(opts: { silent?: boolean; json?: boolean; write?: (line: string) => void; bindings?: Record<string, unknown> } = {}): Logger {
  const json = opts.json ?? process.env.TESSERA_LOG_FORMAT === 'json';
  if (json && !opts.silent) return createPinoLogger({ ...(opts.write ? { write: opts.write } : {}), ...(opts.bindings ? { bindings: opts.bindings } : {}) });
  const write = opts.write ?? ((line: string) => process.stdout.write(line + '\n'));
  const bindings = opts.bindings ?? {};
  const emit = (level: Level, msg: string, fields?: Record<string, unknown>) => {
    if (opts.silent) return;
    const all = { ...bindings, ...fields };
    if (json) {
      write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...all }));
    } else {
      const extra = Object.entries(all)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      write(`[server] ${level === 'info' ? '' : level.toUpperCase() + ' '}${msg}${extra ? ' ' + extra : ''}`);
    }
  };
  return {
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (b) => createLogger({ ...opts, json, write, bindings: { ...bindings, ...b } }),
  };
}
