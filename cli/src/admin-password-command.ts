import { readFileSync } from 'node:fs';
import { IdentityStore, Store } from '@tessera/server';
import { parseFlags, UsageError } from './args.js';

export const ADMIN_PASSWORD_HELP = `Usage: tessera admin-password [--user admin] [--password-file FILE] [--data DIR]

Sets the password an admin signs in to the console with (/console). It is stored as a scrypt
hash in the server's data directory; the running server sees it at the next login.
The password is read from --password-file, else from standard input (first line):

  printf '%s\\n' "$PASSWORD" | tessera admin-password --data .tessera

On a fresh data directory the server also takes TESSERA_ADMIN_PASSWORD at its first start.

  --user NAME           admin user name (default admin)
  --password-file FILE  read the password from FILE (first line)
  --data DIR            the server's data directory (default ./.tessera)`;

async function readStdin(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8');
  return text;
}

/** `tessera admin-password`. */
export async function runAdminPasswordCommand(argv: string[], io: { stdin?: NodeJS.ReadableStream; out?: (l: string) => void } = {}): Promise<number> {
  const f = parseFlags(argv, { user: { type: 'string' }, 'password-file': { type: 'string' }, data: { type: 'string' } });
  const out = io.out ?? ((l: string) => console.log(l));
  if (f.help) {
    out(ADMIN_PASSWORD_HELP);
    return 0;
  }
  let raw: string;
  try {
    raw = f['password-file'] ? readFileSync(f['password-file'], 'utf8') : await readStdin(io.stdin ?? process.stdin);
  } catch (e) {
    throw new UsageError(`cannot read the password: ${(e as Error).message}`);
  }
  const password = raw.split(/\r?\n/)[0] ?? '';
  if (!password) throw new UsageError('no password given (pipe it on standard input or use --password-file)');
  const user = f.user ?? 'admin';
  const store = new Store(f.data ?? '.tessera');
  try {
    await new IdentityStore(store.db).setAdminPassword(user, password);
    store.audit('cli', 'admin.password_set', user, { source: f['password-file'] ? 'file' : 'stdin' });
    out(`password for admin user '${user}' set`);
    return 0;
  } finally {
    store.close();
  }
}
