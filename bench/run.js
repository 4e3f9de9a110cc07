// Tessera's benchmark: `npm run bench` (builds, then runs this file).
//
//   node bench/run.js [--quick] [--sections 1,2,3,4,5] [--scale-sizes 100,500] [--no-plots]
//
// Sections: 1 local training throughput vs PyTorch, 2 FedAvg aggregation vs NumPy, 3 privacy and
// encryption costs per parameter, 4 one server with N concurrent clients, 5 demo accuracy per
// round on MNIST. Progress goes to stderr; the report (machine + one markdown table per section +
// targets) to stdout. Writes bench/results/bench-<timestamp>.json, latest.json, latest.md and
// PNG plots. See bench/README.md.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH_DIR, REPO_DIR, elapsed, findPython, fmt, lastJson, machineInfo, openFileLimits, progress, runChild, table } from './lib/util.js';

const HELP = `Usage: node bench/run.js [--quick] [--sections LIST] [--scale-sizes LIST] [--no-plots]

  --quick            short version (< 5 min on 2 cores): fewer samples, K=20, N up to 1000, 3 rounds
  --sections LIST    comma-separated subset of 1..5 (default all):
                     1 training, 2 aggregation, 3 privacy, 4 scale, 5 accuracy
  --scale-sizes LIST client counts for section 4 (default 100,500,1000,2000; quick 100,500,1000)
  --no-plots         skip the PNG plots`;

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    sections: { type: 'string' },
    'scale-sizes': { type: 'string' },
    'no-plots': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (flags.help) {
  console.log(HELP);
  process.exit(0);
}
if (Number(process.versions.node.split('.')[0]) < 24) {
  console.error(`bench: Node ${process.version}; Tessera needs Node 24 (npm run bench, or npx node bench/run.js, uses the pinned one).`);
  process.exit(2);
}

const wanted = new Set((flags.sections ?? '1,2,3,4,5').split(',').map((s) => Number(s.trim())));
const scaleSizes = flags['scale-sizes']?.split(',').map(Number);

// Section 4 holds one descriptor per client in this process and in the server. If the soft limit
// is too low but the hard limit allows more, re-run under `ulimit -n <hard>` (children inherit it).
if (wanted.has(4) && !process.env.TESSERA_BENCH_ULIMIT_RAISED) {
  const lim = openFileLimits();
  const need = Math.max(...(scaleSizes ?? [2000])) * 2 + 512;
  if (lim && lim.soft < need && lim.hard > lim.soft) {
    const target = Number.isFinite(lim.hard) ? lim.hard : need;
    progress(`raising the open-file limit from ${lim.soft} to ${target} (ulimit -n) and re-running`);
    const quoted = [process.execPath, ...process.argv.slice(1)].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
    const r = spawnSync('sh', ['-c', `ulimit -n ${target} && exec ${quoted}`], { stdio: 'inherit', env: { ...process.env, TESSERA_BENCH_ULIMIT_RAISED: '1' } });
    process.exit(r.status ?? 1);
  }
}

const quick = flags.quick;
const started = performance.now();
const machine = machineInfo();
const python = findPython();
const tmpDir = mkdtempSync(join(os.tmpdir(), 'tessera-bench-'));
const resultsDir = join(BENCH_DIR, 'results');
mkdirSync(resultsDir, { recursive: true });

progress(`Tessera benchmark${quick ? ' (--quick)' : ''}: ${machine.cpuModel} × ${machine.cores}, ${machine.memoryGiB} GiB, node ${machine.node}, load ${machine.loadAverage.join(' ')}`);
progress(
  python
    ? `python ${python.python} at ${python.executable}: numpy ${python.numpy ?? 'absent'}, torch ${python.torch ?? 'absent'}, matplotlib ${python.matplotlib ?? 'absent'}`
    : 'no python3 found: PyTorch/NumPy baselines and plots are skipped',
);

const SECTIONS = [
  { n: 1, key: 'training', title: 'Local training throughput', load: () => import('./lib/s1-training.js').then((m) => m.runTraining) },
  { n: 2, key: 'aggregation', title: 'Server aggregation (FedAvg)', load: () => import('./lib/s2-aggregation.js').then((m) => m.runAggregation) },
  { n: 3, key: 'privacy', title: 'Encryption and privacy costs per parameter', load: () => import('./lib/s3-privacy.js').then((m) => m.runPrivacy) },
  { n: 4, key: 'scale', title: 'Scale: one server, N concurrent clients', load: () => import('./lib/s4-scale.js').then((m) => m.runScale) },
  { n: 5, key: 'accuracy', title: 'Accuracy: demo federation on MNIST', load: () => import('./lib/s5-accuracy.js').then((m) => m.runAccuracy) },
];

const ctx = { quick, python, tmpDir, scaleSizes };
const sections = {};
for (const s of SECTIONS) {
  if (!wanted.has(s.n)) continue;
  progress(`▶ section ${s.n}/5: ${s.title}`);
  const t = performance.now();
  try {
    const run = await s.load();
    sections[s.key] = { ...(await run(ctx)), seconds: (performance.now() - t) / 1000 };
  } catch (e) {
    sections[s.key] = { title: s.title, error: e.stack ?? String(e), table: `_failed: ${e.message}_`, notes: [], rows: [], seconds: (performance.now() - t) / 1000 };
  }
  progress(`✔ section ${s.n} done in ${fmt(sections[s.key].seconds, 1)} s\n${sections[s.key].table}\n`);
}

// Targets the project set for itself.
const targets = [];
const tr = sections.training?.rows;
if (tr) {
  for (const preset of ['cnn', 'mlp']) {
    const w = tr.find((r) => r.preset === preset && r.backend === 'wasm');
    targets.push({
      target: `${preset} training on wasm ≥ 0.5× PyTorch CPU samples/s`,
      value: w?.vsTorch1 === undefined ? 'not measured' : `${fmt(w.vsTorch1, 2)}× of PyTorch 1 thread, ${fmt(w.vsTorch2, 2)}× of 2 threads`,
      met: w?.vsTorch1 === undefined ? null : w.vsTorch1 >= 0.5,
    });
  }
}
const ag = sections.aggregation?.rows;
if (ag) {
  const t = ag.find((r) => r.key === 'tessera');
  targets.push({ target: 'aggregation ≥ 0.5× NumPy', value: t?.vsNumpy === undefined ? 'not measured' : `${fmt(t.vsNumpy, 2)}× (NumPy float64 loop)`, met: t?.vsNumpy === undefined ? null : t.vsNumpy >= 0.5 });
}
const sc = sections.scale?.rows;
if (sc) {
  const r = sc.find((x) => x.clients === 1000);
  targets.push({
    target: '1,000 concurrent clients complete a round',
    value: r ? `${r.roundsCompleted ?? 0}/${r.rounds ?? '?'} rounds completed, ${r.submitOk ?? 0} updates accepted, slowest round ${fmt(Math.max(...(r.roundSeconds ?? [NaN])), 2)} s` : 'not measured',
    met: r ? r.ok : null,
  });
}

const totalSeconds = (performance.now() - started) / 1000;
const endLoad = os.loadavg().map((x) => Number(x.toFixed(2)));
const date = new Date();
const result = { date: date.toISOString(), quick, totalSeconds, machine: { ...machine, loadAverageAtEnd: endLoad }, python: python ?? null, sections, targets };

// Report.
const lines = [];
lines.push(`# Tessera benchmark${quick ? ' (--quick)' : ''} — ${date.toISOString()}`, '');
lines.push(
  table(
    ['machine', ''],
    [
      ['CPU', `${machine.cpuModel} (${machine.cpuFlags || 'flags n/a'})`],
      ['cores', machine.cores],
      ['RAM', `${machine.memoryGiB} GiB`],
      ['OS', machine.os],
      ['Node', machine.node],
      ['Python', python ? `${python.python}: numpy ${python.numpy ?? '–'}, torch ${python.torch ?? '–'}, matplotlib ${python.matplotlib ?? '–'}` : '–'],
      ['load average (1/5/15 min)', `${machine.loadAverage.join(' / ')} at start, ${endLoad.join(' / ')} at end`],
      ['total runtime', `${fmt(totalSeconds, 0)} s`],
    ],
    ['l', 'l'],
  ),
  '',
);
for (const s of SECTIONS) {
  const r = sections[s.key];
  if (!r) continue;
  lines.push(`## ${s.n}. ${r.title ?? s.title} (${fmt(r.seconds, 0)} s)`, '', r.table, '');
  for (const n of r.notes ?? []) lines.push(`- ${n}`);
  if (r.error) lines.push('', '```', r.error, '```');
  lines.push('');
}
if (targets.length) {
  lines.push('## Targets', '', table(['target', 'measured', 'met'], targets.map((t) => [t.target, t.value, t.met === null ? '–' : t.met ? 'yes' : '**no**'])), '');
}

const stamp = date.toISOString().replace(/[:.]/g, '-');
const jsonText = `${JSON.stringify(result, null, 2)}\n`;
writeFileSync(join(resultsDir, `bench-${stamp}.json`), jsonText);
writeFileSync(join(resultsDir, 'latest.json'), jsonText);

if (!flags['no-plots']) {
  if (python?.matplotlib) {
    progress('drawing plots (matplotlib)');
    const r = await runChild(python.exe, [join(BENCH_DIR, 'lib/plot.py'), join(resultsDir, 'latest.json'), resultsDir], { timeoutMs: 120_000 });
    const out = lastJson(r.stdout);
    lines.push(out ? `Plots: ${out.written.map((p) => p.replace(REPO_DIR, '')).join(', ')}` : `Plots failed: ${r.stderr.trim().split('\n').at(-1)}`);
  } else lines.push('Plots skipped: no python3 with matplotlib (apt-get install python3-matplotlib).');
}
lines.push(`JSON: bench/results/bench-${stamp}.json (and latest.json)`);
const report = lines.join('\n');
writeFileSync(join(resultsDir, 'latest.md'), `${report}\n`);
rmSync(tmpDir, { recursive: true, force: true });
progress(`finished in ${elapsed().trim()} s`);
console.log(report);
// tfjs / socket.io may leave handles open; the work is done. A section that threw fails the run
// (an unmet target does not).
process.exit(Object.values(sections).some((s) => s.error) ? 1 : 0);
