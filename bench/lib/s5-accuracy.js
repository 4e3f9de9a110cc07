// Section 5: accuracy of the demo federation on MNIST (3 client processes), IID and
// non-IID (dirichlet:0.3), per round — `tessera demo --json` as a child process.
import { join } from 'node:path';
import { REPO_DIR, fmt, lastJson, progress, runNode, table } from './util.js';

export async function runAccuracy(ctx) {
  const { quick } = ctx;
  const rounds = quick ? 3 : 5;
  const clients = 3;
  const rows = [];
  const notes = [];
  for (const partition of ['iid', 'dirichlet:0.3']) {
    progress(`  [5] tessera demo --clients ${clients} --rounds ${rounds} --partition ${partition} (mlp, wasm): training`);
    const r = await runNode(join(REPO_DIR, 'cli/dist/bin.js'), ['demo', '--clients', String(clients), '--rounds', String(rounds), '--partition', partition, '--json'], {
      timeoutMs: 15 * 60_000,
      echo: (l) => l.startsWith('== round'),
    });
    const s = lastJson(r.stdout);
    if (!s) {
      rows.push({ partition, error: `exit ${r.code}${r.timedOut ? ' (timed out)' : ''}: ${r.stderr.trim().split('\n').at(-1) ?? ''}`.slice(0, 300), accuracyByRound: [] });
      continue;
    }
    rows.push({ partition, ...s });
  }
  const maxRounds = Math.max(rounds, ...rows.map((r) => r.accuracyByRound.length));
  const md = table(
    ['partition', ...Array.from({ length: maxRounds }, (_, i) => `round ${i + 1}`), 'status', 'backend', 'wall s', 'MB up+down / round'],
    rows.map((r) =>
      r.error
        ? [r.partition, ...Array.from({ length: maxRounds }, () => ''), r.error, '', '', '']
        : [
            r.partition,
            ...Array.from({ length: maxRounds }, (_, i) => fmt(r.accuracyByRound[i], 4)),
            r.status,
            r.backend,
            fmt(r.wallSeconds, 1),
            fmt(r.bytesPerRound.reduce((a, b) => a + b, 0) / Math.max(1, r.bytesPerRound.length) / 1e6, 2),
          ],
    ),
  );
  notes.push(
    `Global accuracy on the 2,000 held-out MNIST digits after each round; ${clients} client processes, mlp preset, 1 local epoch, batch 32, Adam 1e-3, seed 'tessera' (same partitions every run; model initialization and shuffling vary).`,
  );
  return { title: 'Accuracy: demo federation on MNIST', rounds, clients, rows, table: md, notes };
}
