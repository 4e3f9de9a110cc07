// Section 1: local training throughput (samples/s), Tessera's Node trainer on each backend
// against PyTorch on CPU with the same architecture, batch size, optimizer and data.
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { BENCH_DIR, fmt, int, lastJson, progress, prng, runChild, runNode, table } from './util.js';

const FEATURES = 784;

/** n MNIST-shaped examples: uniform [0,1) pixels then int32 labels, one file both trainers read. */
function writeSyntheticMnist(file, n) {
  const buf = new Uint8Array(n * FEATURES * 4 + n * 4);
  const xs = new Float32Array(buf.buffer, 0, n * FEATURES);
  const ys = new Int32Array(buf.buffer, n * FEATURES * 4, n);
  const rand = prng(20_24);
  for (let i = 0; i < xs.length; i++) xs[i] = rand();
  for (let i = 0; i < n; i++) ys[i] = Math.floor(rand() * 10);
  writeFileSync(file, buf);
}

function tfjsNodeInstalled() {
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      import.meta.resolve(pkg);
      return pkg;
    } catch {
      /* not installed */
    }
  }
  return undefined;
}

export async function runTraining(ctx) {
  const { quick, python, tmpDir } = ctx;
  const targetSeconds = quick ? 2 : 4; // per trial
  const trials = quick ? 2 : 3;
  const dataFile = join(tmpDir, 'synthetic-mnist.bin');
  const nData = quick ? 4096 : 8192;
  writeSyntheticMnist(dataFile, nData);
  const notes = [];
  const rows = [];

  const tfNode = tfjsNodeInstalled();
  const backends = ['wasm', ...(tfNode ? ['tensorflow'] : []), 'cpu'];
  if (!tfNode) notes.push('tensorflow backend: @tensorflow/tfjs-node not installed (optional peer), not measured.');

  for (const preset of ['mlp', 'cnn']) {
    for (const backend of backends) {
      if (quick && backend === 'cpu' && preset === 'cnn') {
        notes.push('cpu backend × cnn skipped in --quick (about 1–3 samples/s: one warm-up batch alone takes 10–25 s); the full run measures it.');
        continue;
      }
      progress(`  [1] Tessera TfjsTrainer, backend ${backend}, ${preset}: warm-up, then ${trials} × ~${targetSeconds}s of training`);
      const cfg = { backend, preset, data: dataFile, targetSeconds, minSamples: backend === 'cpu' && preset === 'cnn' ? 64 : 128, batch: 32, trials: backend === 'cpu' && preset === 'cnn' ? 1 : trials };
      const r = await runNode(join(BENCH_DIR, 'lib/train-node.js'), [JSON.stringify(cfg)], { timeoutMs: 10 * 60_000 });
      const out = lastJson(r.stdout);
      if (!out) {
        rows.push({ preset, impl: `Tessera ${backend}`, error: (r.stderr.trim().split('\n').at(-1) ?? `exit ${r.code}`).slice(0, 300) });
        continue;
      }
      if (out.skipped) {
        notes.push(`${backend}: ${out.skipped}`);
        continue;
      }
      rows.push({
        preset,
        impl: `Tessera ${out.backend}`,
        kind: 'tessera',
        backend: out.backend,
        threads: out.backend === 'wasm' ? out.wasmThreads : 1,
        samplesPerSec: out.samplesPerSec,
        samples: out.samples,
        seconds: out.seconds,
        params: out.params,
        detail: out,
      });
      if (out.backend === 'wasm' && !notes.some((n) => n.startsWith('wasm:'))) {
        notes.push(`wasm: ${out.wasmThreads} thread(s) (multithreaded build usable: ${out.multithread}), SIMD ${out.simd}; ${out.reason}.`);
      }
    }

    if (!python?.torch) {
      if (preset === 'mlp') notes.push(`PyTorch baseline skipped: no python3 with torch found (${python ? python.exe : 'no python3'}). apt-get install python3-torch libopenblas0-pthread.`);
      continue;
    }
    for (const threads of [1, 2]) {
      progress(`  [1] PyTorch ${python.torch} CPU, ${threads} thread(s), ${preset}: warm-up, then ${trials} × ~${targetSeconds}s of training`);
      const env = { OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };
      const r = await runChild(
        python.exe,
        [join(BENCH_DIR, 'lib/torch_train.py'), '--preset', preset, '--threads', String(threads), '--data', dataFile, '--target-seconds', String(targetSeconds), '--trials', String(trials)],
        { env, timeoutMs: 5 * 60_000 },
      );
      const out = lastJson(r.stdout);
      if (!out) {
        rows.push({ preset, impl: `PyTorch ${threads}t`, error: (r.stderr.trim().split('\n').at(-1) ?? `exit ${r.code}`).slice(0, 300) });
        continue;
      }
      rows.push({ preset, impl: 'PyTorch CPU', kind: 'torch', threads, samplesPerSec: out.samplesPerSec, samples: out.samples, seconds: out.seconds, params: out.params, detail: out });
      if (!notes.some((n) => n.startsWith('PyTorch BLAS'))) {
        notes.push(
          out.openblas
            ? `PyTorch BLAS: OpenBLAS is loaded (${out.blasLibraries.filter((l) => /blas/.test(l)).join(', ')}); 512² sgemm ${fmt(out.sgemmGflops1Thread, 0)} GFLOP/s on 1 thread. Convolutions go through oneDNN (mkldnn ${out.mkldnn}).`
            : `PyTorch BLAS: OpenBLAS NOT loaded (${out.blasLibraries.join(', ') || 'none found'}), 512² sgemm ${fmt(out.sgemmGflops1Thread, 1)} GFLOP/s on 1 thread — Debian's torch falls back to the reference BLAS; install libopenblas0-pthread. Dense layers are slow in this baseline.`,
        );
      }
    }
  }

  for (const preset of ['mlp', 'cnn']) {
    const t1 = rows.find((x) => x.preset === preset && x.kind === 'torch' && x.threads === 1);
    const t2 = rows.find((x) => x.preset === preset && x.kind === 'torch' && x.threads === 2);
    if (t1 && t2 && t2.samplesPerSec < 0.9 * t1.samplesPerSec) {
      notes.push(
        `PyTorch ${preset}: 2 threads ran slower than 1 (${fmt(t2.samplesPerSec, 0)} vs ${fmt(t1.samplesPerSec, 0)} samples/s) — on 2 cores shared with other processes (1-min load average ${os.loadavg()[0].toFixed(1)} at the end of the section) OpenMP and OpenBLAS threads wait on descheduled peers; the 1-thread figure is the stable comparison.`,
      );
    }
  }

  // Ratios against PyTorch at 1 and 2 threads for the same preset.
  for (const r of rows) {
    const torch = (t) => rows.find((x) => x.preset === r.preset && x.kind === 'torch' && x.threads === t)?.samplesPerSec;
    r.vsTorch1 = r.samplesPerSec && torch(1) ? r.samplesPerSec / torch(1) : undefined;
    r.vsTorch2 = r.samplesPerSec && torch(2) ? r.samplesPerSec / torch(2) : undefined;
  }
  const ratio = (x) => (x === undefined ? '–' : `${x < 0.1 ? x.toPrecision(2) : fmt(x, 2)}×`);
  const md = table(
    ['preset', 'params', 'implementation', 'threads', 'samples/s', 'ms/batch (32)', 'measured', 'vs PyTorch 1 thread', 'vs PyTorch 2 threads'],
    rows.map((r) =>
      r.error
        ? [r.preset, '', r.impl, '', 'error', '', '', '', r.error]
        : [
            r.preset,
            int(r.params),
            r.impl,
            r.threads,
            fmt(r.samplesPerSec, r.samplesPerSec < 10 ? 2 : 0),
            fmt((1000 * 32) / r.samplesPerSec, 1),
            `${int(r.samples)} in ${fmt(r.seconds, 1)} s`,
            ratio(r.vsTorch1),
            ratio(r.vsTorch2),
          ],
    ),
  );
  notes.push(
    `Synthetic MNIST-shaped data (${int(nData)} examples, uniform pixels, random labels), batch 32, Adam 1e-3; warm-up first, then ${trials} timed trials of ~${targetSeconds} s each, the fastest reported (cpu × cnn: one trial of 64 samples). Tessera = TfjsTrainer.train (its own training loop: per-epoch shuffle, optimizer.minimize per batch, Adam computed in JS on wasm/cpu, metrics read once per epoch — what a client runs each round); PyTorch = a plain zero_grad/forward/backward/step loop over shuffled batches.`,
  );
  return { title: 'Local training throughput', rows, table: md, notes };
}
