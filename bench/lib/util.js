// Shared helpers for the benchmark: progress output, markdown tables, child processes,
// the Python interpreter that has the baselines, and machine facts.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { createInterface } from 'node:readline';
import { clearTimeout } from 'node:timers';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = fileURLToPath(new URL('..', import.meta.url));
export const REPO_DIR = fileURLToPath(new URL('../..', import.meta.url));

const t0 = performance.now();
/** Seconds since the benchmark started, for progress lines. */
export const elapsed = () => ((performance.now() - t0) / 1000).toFixed(1).padStart(6);

/** A progress line on stderr, so stdout stays the report. */
export function progress(msg) {
  process.stderr.write(`[${elapsed()}s] ${msg}\n`);
}

/** A markdown table from a header and rows (cells converted with String). */
export function table(header, rows, align) {
  const a = align ?? header.map((_, i) => (i === 0 ? 'l' : 'r'));
  const sep = a.map((x) => (x === 'l' ? '---' : '---:'));
  const line = (cells) => `| ${cells.map((c) => String(c ?? '–')).join(' | ')} |`;
  return [line(header), `|${sep.join('|')}|`, ...rows.map(line)].join('\n');
}

/** Fixed-point formatting that shows '–' for missing values. */
export function fmt(x, digits = 2) {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  if (!Number.isFinite(x)) return String(x);
  return x.toFixed(digits);
}

/** Thousands separators for counts. */
export const int = (x) => (x === null || x === undefined ? '–' : Math.round(x).toLocaleString('en-US'));

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Runs a command, forwarding its stderr lines (prefixed) as progress when `echo` is set, and
 * resolves with { code, stdout, stderr, seconds }. Kills it after `timeoutMs`.
 */
export function runChild(cmd, args, { env, timeoutMs = 600_000, echo, cwd = REPO_DIR, onLine } = {}) {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => (stdout += d));
    createInterface({ input: child.stderr }).on('line', (l) => {
      stderr += l + '\n';
      if (echo && echo(l)) progress(`    ${l.length > 200 ? l.slice(0, 200) + '…' : l}`);
      onLine?.(l);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: -1, stdout, stderr: stderr + String(e), seconds: (performance.now() - started) / 1000, timedOut });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, seconds: (performance.now() - started) / 1000, timedOut });
    });
  });
}

/** The last line of stdout that parses as a JSON object, or undefined. */
export function lastJson(stdout) {
  const lines = stdout.trim().split('\n').reverse();
  for (const l of lines) {
    if (!l.startsWith('{')) continue;
    try {
      return JSON.parse(l);
    } catch {
      /* not JSON */
    }
  }
  return undefined;
}

/** Runs a Node script with the same Node binary as this process. */
export function runNode(script, args, opts) {
  return runChild(process.execPath, [script, ...args], opts);
}

/**
 * Finds a Python 3 with the baselines. Debian's python3-torch/numpy/matplotlib live in
 * /usr/bin/python3's dist-packages; a pyenv or venv `python3` earlier on PATH does not see them,
 * so candidates are probed and the one importing the most of torch, numpy, matplotlib wins.
 * TESSERA_BENCH_PYTHON overrides.
 */
export function findPython() {
  const candidates = process.env.TESSERA_BENCH_PYTHON ? [process.env.TESSERA_BENCH_PYTHON] : ['/usr/bin/python3', 'python3'];
  const probe = [
    'import json, sys',
    'out = {"python": sys.version.split()[0], "executable": sys.executable}',
    'for m in ("numpy", "torch", "matplotlib"):',
    '    try:',
    '        mod = __import__(m); out[m] = mod.__version__',
    '    except Exception as e:',
    '        out[m] = None',
    'print(json.dumps(out))',
  ].join('\n');
  let best;
  for (const exe of candidates) {
    const r = spawnSync(exe, ['-c', probe], { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) continue;
    let info;
    try {
      info = JSON.parse(r.stdout.trim().split('\n').at(-1));
    } catch {
      continue;
    }
    const score = ['numpy', 'torch', 'matplotlib'].filter((m) => info[m]).length;
    if (!best || score > best.score) best = { exe, score, ...info };
  }
  return best;
}

/** CPU, cores, memory, OS, Node and load: printed with the report since numbers depend on them. */
export function machineInfo() {
  const cpus = os.cpus();
  let flags = '';
  try {
    const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
    const f = /^flags\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? '';
    flags = ['avx2', 'avx512f', 'fma'].filter((x) => f.split(' ').includes(x)).join(' ');
  } catch {
    /* not Linux */
  }
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    cpuFlags: flags,
    memoryGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    loadAverage: os.loadavg().map((x) => Number(x.toFixed(2))),
  };
}

/** Soft and hard "Max open files" of this process (Linux), or undefined elsewhere. */
export function openFileLimits() {
  try {
    const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (!m) return undefined;
    const n = (s) => (s === 'unlimited' ? Infinity : Number(s));
    return { soft: n(m[1]), hard: n(m[2]) };
  } catch {
    return undefined;
  }
}

/** Resident set size (VmRSS) of a process in MiB, from /proc; undefined once it is gone. */
export function rssMiB(pid) {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Deterministic uniform floats in [0, 1) (xorshift32): benchmark inputs need to be reproducible, not secret. */
export function prng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}
