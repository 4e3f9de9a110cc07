#!/usr/bin/env node
import { CLIENT_HELP, runClientCommand } from './client-command.js';
import { DEMO_HELP, runDemoCommand } from './demo-command.js';
import { PRIVACY_HELP, runPrivacyCommand } from './privacy-command.js';
import { KEYHOLDER_HELP, runKeyholderCommand } from './keyholder-command.js';
import { ENROLL_HELP, runEnrollCommand } from './enroll-command.js';
import { ADMIN_PASSWORD_HELP, runAdminPasswordCommand } from './admin-password-command.js';
import { runServerCommand, SERVER_HELP } from './server-command.js';
import { runTokenCommand, TOKEN_HELP } from './token-command.js';
import { UsageError } from './args.js';

const HELP = `Usage: tessera <command> [options]

Federated learning for TypeScript.

Commands:
  server     run the aggregation server
  client     join a task and train on local data
  token      issue a JWT for a client, admin or key holder
  demo       run a complete local federation on MNIST and exit
  start      the demo that keeps serving (what npm start runs)
  enroll     create a single-use enrollment token for a device or key holder
  admin-password  set the console's admin password
  keyholder  run the key holder that decrypts only round aggregates (encrypted tasks)
  privacy    DP accountant: epsilon for a noise multiplier, or the noise for a target epsilon

Run 'tessera <command> --help' for a command's options.`;

const commands: Record<string, { run: (argv: string[]) => Promise<number>; help: string }> = {
  server: { run: runServerCommand, help: SERVER_HELP },
  client: { run: runClientCommand, help: CLIENT_HELP },
  token: { run: runTokenCommand, help: TOKEN_HELP },
  demo: { run: (a) => runDemoCommand(a), help: DEMO_HELP },
  keyholder: { run: runKeyholderCommand, help: KEYHOLDER_HELP },
  enroll: { run: (a) => runEnrollCommand(a), help: ENROLL_HELP },
  'admin-password': { run: (a) => runAdminPasswordCommand(a), help: ADMIN_PASSWORD_HELP },
  privacy: { run: (a) => runPrivacyCommand(a, (l) => console.log(l)), help: PRIVACY_HELP },
  start: { run: (a) => runDemoCommand(a, { keepServing: true, port: Number(process.env.PORT ?? 8080), rounds: 5 }), help: DEMO_HELP },
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(HELP);
    return name ? 0 : 2;
  }
  const cmd = commands[name];
  if (!cmd) {
    console.error(`tessera: unknown command '${name}'. Run 'tessera --help'.`);
    return 2;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`tessera ${name}: ${e.message}\nRun 'tessera ${name} --help' for usage.`);
      return 2;
    }
    const code = (e as { code?: string }).code;
    console.error(`tessera ${name}: ${code ? code + ': ' : ''}${(e as Error).message}`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // tfjs and socket.io may keep handles open; the command's work is done.
    setTimeout(() => process.exit(code), 200).unref();
  },
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
