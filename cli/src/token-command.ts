import { TokenAuthority, type Role } from '@tessera/server';
import { parseFlags, UsageError } from './args.js';

export const TOKEN_HELP = `Usage: tessera token --role client|admin|keyholder --sub ID [--task T]... [--ttl 1h] [--data DIR]

Prints a JWT signed with the server's Ed25519 key (kept in DIR/keys, created on first use).

  --role R     client, admin or keyholder
  --sub ID     subject: the client id (clients must join with this id)
  --task T     scope the token to task T (repeatable; default: any task)
  --ttl D      lifetime, e.g. 90s, 15m, 1h, 7d (default 1h)
  --data DIR   the server's data directory (default ./.tessera)`;

/** `tessera token`. */
export async function runTokenCommand(argv: string[]): Promise<number> {
  const f = parseFlags(argv, { role: { type: 'string' }, sub: { type: 'string' }, task: { type: 'string', multiple: true }, ttl: { type: 'string' }, data: { type: 'string' } });
  if (f.help) {
    console.log(TOKEN_HELP);
    return 0;
  }
  const role = f.role as Role | undefined;
  if (!role || !['client', 'admin', 'keyholder'].includes(role)) throw new UsageError('--role must be client, admin or keyholder');
  if (!f.sub) throw new UsageError('--sub is required');
  const auth = await TokenAuthority.open(f.data ?? '.tessera');
  console.log(await auth.issue({ role, sub: f.sub, ...(f.task ? { tasks: f.task } : {}), ttl: f.ttl ?? '1h' }));
  return 0;
}
