import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';

/** Static pages the server serves: the browser client at /join (built by `npm run build`). */
export function staticRoutes(): Record<string, string> {
  const pkg = createRequire(import.meta.url).resolve('@tessera/client-browser/package.json');
  const page = join(dirname(pkg), 'dist', 'page');
  return existsSync(page) ? { '/join': page } : {};
}
