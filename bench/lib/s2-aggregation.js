// Section 2: server aggregation — FedAvg.aggregate over K updates of P parameters, against
// NumPy doing the same weighted sum in the same run.
import { join } from 'node:path';
import { FedAvg } from '@tessera/server';
import { BENCH_DIR, fmt, int, lastJson, median, progress, prng, runChild, table } from './util.js';

/**
 * Bench-only prototype of a faster FedAvg sum (NOT the server's code): four clients per pass
 * over the float64 accumulator, so it is loaded and stored a quarter as often. Same float64
 * accumulation, same result up to the order of additions.
 */
export function fedAvgUnrolled4(global, results) {
  const P = global.length;
  const acc = new Float64Array(P);
  let total = 0;
  for (const r of results) total += r.numExamples;
  let k = 0;
  for (; k + 4 <= results.length; k += 4) {
    const [a, b, c, d] = [results[k], results[k + 1], results[k + 2], results[k + 3]];
    const [na, nb, nc, nd] = [a.numExamples, b.numExamples, c.numExamples, d.numExamples];
    const [da, db, dc, dd] = [a.delta, b.delta, c.delta, d.delta];
    for (let i = 0; i < P; i++) acc[i] += na * da[i] + nb * db[i] + nc * dc[i] + nd * dd[i];
  }
  for (; k < results.length; k++) {
    const n = results[k].numExamples;
    const d = results[k].delta;
    for (let i = 0; i < P; i++) acc[i] += n * d[i];
  }
  const out = new Float32Array(P);
  const s = 1 / total;
  for (let i = 0; i < P; i++) out[i] = global[i] + s * acc[i];
  return out;
}

function timeIt(fn, reps) {
  fn(); // warm-up: JIT and page faults of the outputs
  const ts = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    fn();
    ts.push((performance.now() - t) / 1000);
  }
  return { medianSeconds: median(ts), minSeconds: Math.min(...ts) };
}

export async function runAggregation(ctx) {
  const { quick, python } = ctx;
  const K = quick ? 20 : 50;
  const P = 1_000_000;
  const reps = quick ? 3 : 5;
  const notes = [];
  progress(`  [2] building ${K} updates × ${int(P)} params (${fmt((K * P * 4) / 1e6, 0)} MB of float32)`);
  const rand = prng(7);
  const global = new Float32Array(P);
  for (let i = 0; i < P; i++) global[i] = rand() - 0.5;
  const results = [];
  for (let k = 0; k < K; k++) {
    const delta = new Float32Array(P);
    for (let i = 0; i < P; i++) delta[i] = (rand() - 0.5) * 0.02;
    results.push({ clientId: `c${k}`, numExamples: 1 + Math.floor(rand() * 600), delta, metrics: { loss: 1 } });
  }
  const fedavg = new FedAvg();
  progress(`  [2] Tessera FedAvg.aggregate, ${reps} timed repetitions`);
  const tessera = timeIt(() => fedavg.aggregate(1, global, results, []), reps);
  progress(`  [2] bench-only prototype (4 clients per pass), ${reps} timed repetitions`);
  const proto = timeIt(() => fedAvgUnrolled4(global, results), reps);
  // The prototype must agree with FedAvg (same float64 sum, other association).
  const a = fedavg.aggregate(1, global, results, []).weights;
  const b = fedAvgUnrolled4(global, results);
  let maxDiff = 0;
  for (let i = 0; i < P; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
  results.length = 0; // free before NumPy allocates its own copy

  // Rates from the fastest repetition: on a shared machine noise only ever slows a run down.
  const per = (t) => ({ ...t, usPerParamUpdate: (t.minSeconds * 1e6) / (K * P), gbPerSec: (K * P * 4) / t.minSeconds / 1e9 });
  const rows = [
    { impl: 'Tessera FedAvg.aggregate (server/src/strategies/fedavg.ts)', key: 'tessera', ...per(tessera) },
    { impl: 'prototype: 4 clients per pass (bench-only, not in the server)', key: 'prototype', ...per(proto), maxAbsDiffVsFedAvg: maxDiff },
  ];
  let numpy;
  if (python?.numpy) {
    progress(`  [2] NumPy ${python.numpy}: the same weighted sum, ${reps} timed repetitions`);
    const r = await runChild(python.exe, [join(BENCH_DIR, 'lib/numpy_aggregate.py'), '--k', String(K), '--p', String(P), '--reps', String(reps)], {
      env: { OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1' },
      timeoutMs: 5 * 60_000,
    });
    numpy = lastJson(r.stdout);
    if (numpy) {
      rows.push({ impl: 'NumPy loop, float64 accumulator (same computation)', key: 'numpy', ...per(numpy.loop64) });
      rows.push({ impl: 'NumPy n @ D, float32 sgemv, 1 thread (lower bound)', key: 'numpy-gemv', ...per(numpy.gemv32) });
    } else notes.push(`NumPy baseline failed: ${r.stderr.trim().split('\n').at(-1)}`);
  } else notes.push('NumPy baseline skipped: no python3 with numpy (apt-get install python3-numpy).');
  const ref = rows.find((r) => r.key === 'numpy');
  for (const r of rows) r.vsNumpy = ref ? ref.minSeconds / r.minSeconds : undefined;

  const md = table(
    ['implementation', 'K', 'P', 'best ms (median)', 'µs / param-update', 'GB/s (updates read)', 'vs NumPy loop'],
    rows.map((r) => [r.impl, K, int(P), `${fmt(r.minSeconds * 1000, 1)} (${fmt(r.medianSeconds * 1000, 1)})`, fmt(r.usPerParamUpdate, 5), fmt(r.gbPerSec, 2), r.vsNumpy === undefined ? '–' : `${fmt(r.vsNumpy, 2)}×`]),
    ['l', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
  notes.push(
    `One aggregation = weighted sum of K float32 updates into a float64 accumulator plus the final global + sum/Σn in float32; µs per param-update = time / (K·P); GB/s counts the K·P·4 bytes of updates read; rates and ratios from the best of ${reps} repetitions after a warm-up (median in brackets). Single-threaded on both sides. Prototype max |Δ| vs FedAvg: ${maxDiff.toExponential(1)}.`,
  );
  return { title: 'Server aggregation (FedAvg)', k: K, p: P, reps, rows, numpy, table: md, notes };
}
