import { readFileSync } from 'node:fs';
import { TesseraServerApp } from '@tessera/server';
import { numberFlag, parseFlags, UsageError } from './args.js';
import { staticRoutes } from './static-routes.js';

export const SERVER_HELP = `Usage: tessera server [--port P] [--host H] [--data DIR] [--task FILE]

Starts the aggregation server (REST + socket.io on one port) and keeps serving.

  --port P     port to listen on (default 8080; 0 = any free port)
  --host H     interface to bind (default 127.0.0.1)
  --data DIR   data directory: SQLite database, signing key (default ./.tessera)
  --task FILE  create a task from a JSON task spec, unless a running task of that name exists
  -h, --help   this help

Tasks left running by a stopped server resume from their last completed round.
Tokens for clients and admins: tessera token --data DIR --role client --sub ID`;

/** `tessera server`: runs until SIGINT/SIGTERM. */
export async function runServerCommand(argv: string[]): Promise<number> {
  const f = parseFlags(argv, { port: { type: 'string' }, host: { type: 'string' }, data: { type: 'string' }, task: { type: 'string' } });
  if (f.help) {
    console.log(SERVER_HELP);
    return 0;
  }
  const server = await TesseraServerApp.start({ port: numberFlag(f.port, 'port', 8080, { min: 0, integer: true }), host: f.host ?? '127.0.0.1', dataDir: f.data ?? '.tessera', staticRoutes: staticRoutes() });
  if (f.task) {
    let spec: { name?: string };
    try {
      spec = JSON.parse(readFileSync(f.task, 'utf8')) as { name?: string };
    } catch (e) {
      await server.close();
      throw new UsageError(`cannot read task file ${f.task}: ${(e as Error).message}`);
    }
    const existing = server.store.listTasks().find((t) => t.status === 'running' && t.name === (spec.name ?? 'task'));
    if (existing) server.log.info(`task '${existing.name}' is already running as ${existing.id}; not creating it again`);
    else await server.createTask(spec, 'cli');
  }
  console.log(`Tessera server listening on ${server.url}`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  return 0;
}
