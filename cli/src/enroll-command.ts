import { IdentityStore, parseTtl, Store } from '@tessera/server';
import { parseFlags, UsageError } from './args.js';

export const ENROLL_HELP = `Usage: tessera enroll --role client|keyholder [--task T]... [--ttl 1d] [--client-id ID] [--note TEXT] [--data DIR]

Creates a single-use, expiring enrollment token in the server's data directory and prints it
(stdout, one line). A device exchanges it once at POST /api/enroll for a short session JWT and
a refresh token; revoke devices in the console (Access) or at POST /api/revocations.

  --role R        client (trains) or keyholder (decrypts round aggregates)
  --task T        scope to task T (repeatable; default: any task)
  --ttl D         how long the token can be redeemed: 90s, 15m, 12h, 1d, 7d (default 1d)
  --client-id ID  bind the token to this client id (default: the device proposes one)
  --note TEXT     a note shown in the console
  --data DIR      the server's data directory (default ./.tessera)
  --json          print the enrollment as JSON (token included) instead of the bare token`;

/** `tessera enroll`. */
export async function runEnrollCommand(argv: string[], out: (line: string) => void = (l) => console.log(l), err: (line: string) => void = (l) => console.error(l)): Promise<number> {
  const f = parseFlags(argv, {
    role: { type: 'string' },
    task: { type: 'string', multiple: true },
    ttl: { type: 'string' },
    'client-id': { type: 'string' },
    note: { type: 'string' },
    data: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (f.help) {
    out(ENROLL_HELP);
    return 0;
  }
  if (f.role !== 'client' && f.role !== 'keyholder') throw new UsageError('--role must be client or keyholder');
  const ttlSeconds = parseTtl(f.ttl ?? '1d');
  const store = new Store(f.data ?? '.tessera');
  try {
    const identity = new IdentityStore(store.db);
    const { token, enrollment } = identity.createEnrollment({
      role: f.role,
      ttlSeconds,
      createdBy: 'cli',
      ...(f.task ? { tasks: f.task } : {}),
      ...(f['client-id'] ? { clientId: f['client-id'] } : {}),
      ...(f.note ? { note: f.note } : {}),
    });
    store.audit('cli', 'enrollment.create', enrollment.id, { role: enrollment.role, tasks: enrollment.tasks ?? 'any', clientId: enrollment.clientId, expiresAt: enrollment.expiresAt });
    if (f.json) out(JSON.stringify({ ...enrollment, token }));
    else {
      out(token);
      err(`enrollment ${enrollment.id}: ${enrollment.role}, tasks ${enrollment.tasks?.join(',') ?? 'any'}, expires ${new Date(enrollment.expiresAt).toISOString()}; single use`);
    }
    return 0;
  } finally {
    store.close();
  }
}
