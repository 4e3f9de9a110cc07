import { KeyHolder } from '@tessera/client-node';
import { numberFlag, parseFlags, UsageError } from './args.js';

export const KEYHOLDER_HELP = `Usage: tessera keyholder --server URL --token JWT [--keys DIR] [--min-clients N]

Runs the key holder of homomorphically encrypted tasks: a separate process, run by whoever the
partners trust, that connects out to the server (role keyholder). It generates and keeps the CKKS
secret key (DIR/ckks-secret.key, mode 0600), publishes the public key signed with its own Ed25519
key, and decrypts only round aggregates — at most once per task and round, and only with at least
N distinct valid client receipts. Clients pin its signing key: DIR/keyholder-jws.pub.jwk.json.

  --server URL        aggregation server
  --token JWT         token with role keyholder (tessera token --role keyholder --sub ID --task T)
  --keys DIR          key directory (default ./.tessera-keyholder)
  --min-clients N     receipts required per decryption (default 2)
  -h, --help          this help`;

/** `tessera keyholder`: serves until SIGINT/SIGTERM. */
export async function runKeyholderCommand(argv: string[]): Promise<number> {
  const f = parseFlags(argv, { server: { type: 'string' }, token: { type: 'string' }, keys: { type: 'string' }, 'min-clients': { type: 'string' } });
  if (f.help) {
    console.log(KEYHOLDER_HELP);
    return 0;
  }
  if (!f.server) throw new UsageError('--server is required');
  if (!f.token) throw new UsageError('--token is required');
  const kh = await KeyHolder.open({
    keysDir: f.keys ?? '.tessera-keyholder',
    minClients: numberFlag(f['min-clients'], 'min-clients', 2, { min: 1, integer: true }),
    log: (l) => console.log(l),
  });
  console.log(`[keyholder] signing key for clients to pin: ${kh.publicJwkFile}`);
  try {
    await kh.connect(f.server, f.token);
  } catch (e) {
    kh.close();
    const code = (e as { code?: string }).code;
    console.error(`[keyholder] ${code ? code + ': ' : ''}${(e as Error).message}`);
    return code === 'ERR_UNAUTHORIZED' || code === 'ERR_FORBIDDEN' || code === 'ERR_TOKEN_EXPIRED' ? 3 : 1;
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  kh.close();
  return 0;
}
