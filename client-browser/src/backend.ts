import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels } from '@tessera/protocol';

/** The tfjs backends a tab can train on, fastest real first. */
export const BROWSER_BACKENDS = ['webgpu', 'webgl', 'wasm', 'cpu'] as const;
export type BrowserBackend = (typeof BROWSER_BACKENDS)[number];

/** What was found about one GPU API. */
export interface GpuProbe {
  readonly available: boolean;
  /** A software rasterizer / fallback adapter (SwiftShader, llvmpipe …): ranks below wasm. */
  readonly software: boolean;
  readonly detail: string;
}

export interface BackendChoice {
  readonly backend: BrowserBackend;
  /** Why this backend: `notes` joined with '; ' (sent to the server at join). */
  readonly reason: string;
  /** One short finding per candidate considered, the last one saying what is used. */
  readonly notes: readonly string[];
  readonly webgpu?: GpuProbe;
  readonly webgl?: GpuProbe;
}

export interface SelectBackendOptions {
  /** A backend to use regardless of ranking (e.g. from `?backend=`); fails if it cannot start. */
  readonly prefer?: BrowserBackend | 'auto';
  /**
   * URL of the folder holding tfjs-backend-wasm's `.wasm` files, served by the page's own
   * server (the join page ships them under `wasm/`). Without it tfjs looks next to the script.
   */
  readonly wasmPath?: string;
}

const SOFTWARE_RENDERER = /swiftshader|llvmpipe|lavapipe|softpipe|software|basic render/i;

/** The subset of WebGPU's adapter this module reads (TypeScript's DOM lib has no WebGPU types yet). */
interface GpuAdapterLike {
  readonly isFallbackAdapter?: boolean;
  readonly info?: { vendor?: string; architecture?: string; device?: string; description?: string; isFallbackAdapter?: boolean };
}
interface NavigatorGpu {
  readonly gpu?: { requestAdapter(options?: { powerPreference?: 'high-performance' | 'low-power' }): Promise<GpuAdapterLike | null> };
}

/** Asks for the adapter tfjs-backend-webgpu will use and tells hardware from a software fallback. */
export async function probeWebGpu(): Promise<GpuProbe> {
  const gpu = (navigator as Navigator & NavigatorGpu).gpu;
  if (!gpu) {
    const why = globalThis.isSecureContext === false ? 'the page is not a secure context (use https or localhost)' : 'this browser has no navigator.gpu';
    return { available: false, software: false, detail: `WebGPU unavailable: ${why}` };
  }
  let adapter: GpuAdapterLike | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (e) {
    return { available: false, software: false, detail: `WebGPU unavailable: requestAdapter failed (${(e as Error).message})` };
  }
  if (!adapter) return { available: false, software: false, detail: 'WebGPU unavailable: no adapter (GPU blocklisted or disabled)' };
  const info = adapter.info ?? {};
  const name = [info.vendor, info.architecture, info.device, info.description].filter((s) => s).join(' ') || 'unnamed adapter';
  const fallback = adapter.isFallbackAdapter === true || info.isFallbackAdapter === true;
  if (fallback || SOFTWARE_RENDERER.test(name)) {
    return { available: true, software: true, detail: `the WebGPU adapter is a software ${fallback ? 'fallback adapter' : 'renderer'} (${name})` };
  }
  return { available: true, software: false, detail: `hardware WebGPU adapter (${name})` };
}

/** Opens a throw-away WebGL context and reads the unmasked renderer name. */
export function probeWebGl(): GpuProbe {
  const canvas = document.createElement('canvas');
  const gl = (canvas.getContext('webgl2') ?? canvas.getContext('webgl')) as WebGLRenderingContext | null;
  if (!gl) return { available: false, software: false, detail: 'WebGL unavailable: no context' };
  try {
    const ext = gl.getExtension('WEBGL_debug_renderer_info');
    const renderer = String(ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER));
    if (SOFTWARE_RENDERER.test(renderer)) return { available: true, software: true, detail: `the WebGL renderer is software (${renderer})` };
    return { available: true, software: false, detail: `hardware WebGL renderer (${renderer})` };
  } finally {
    gl.getExtension('WEBGL_lose_context')?.loseContext();
  }
}

async function activate(name: BrowserBackend): Promise<boolean> {
  try {
    if (!(await tf.setBackend(name))) return false;
    await tf.ready();
    return true;
  } catch {
    return false;
  }
}

function choice(backend: BrowserBackend, notes: string[], probes: { webgpu?: GpuProbe; webgl?: GpuProbe }): BackendChoice {
  return { backend, reason: notes.join('; '), notes, ...probes };
}

let wasmPathSet = false;

async function activateWasm(wasmPath: string | undefined): Promise<string | undefined> {
  if (wasmPath !== undefined && !wasmPathSet) {
    setWasmPaths(wasmPath.endsWith('/') ? wasmPath : `${wasmPath}/`);
    wasmPathSet = true;
  }
  // tfjs-wasm lacks Conv2DBackpropFilter (CNNs cannot train without it) and its Conv2DBackpropInput is a scalar loop.
  const added = registerWasmTrainingKernels({ replaceConv2DBackpropInput: true });
  if (!(await activate('wasm'))) return undefined;
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  const threads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
  const kernels = added.length ? `, with Tessera's ${added.length} convolution training kernels` : '';
  return `wasm (${simd ? 'SIMD' : 'no SIMD'}, ${threads && globalThis.crossOriginIsolated ? 'multi-threaded' : 'single-threaded'}${kernels})`;
}

/**
 * Picks and activates the fastest real tfjs backend in this tab: hardware WebGPU → hardware
 * WebGL → wasm → a software WebGPU/WebGL adapter → cpu. `prefer` forces one backend (and throws
 * if it cannot start). The reason says what was found, for the page and the join message.
 * @example
 * const { backend, reason } = await selectBrowserBackend({ prefer: 'auto', wasmPath: '/join/wasm/' });
 */
export async function selectBrowserBackend(options: SelectBackendOptions = {}): Promise<BackendChoice> {
  const prefer = options.prefer ?? 'auto';
  const needGpu = prefer === 'auto' || prefer === 'webgpu';
  const webgpu = needGpu ? await probeWebGpu() : undefined;
  const webgl = prefer === 'auto' || prefer === 'webgl' ? probeWebGl() : undefined;
  const probes = { ...(webgpu ? { webgpu } : {}), ...(webgl ? { webgl } : {}) };

  if (prefer !== 'auto') {
    const requested = `requested with ?backend=${prefer}`;
    if (prefer === 'wasm') {
      const how = await activateWasm(options.wasmPath);
      if (!how) throw new Error(`backend wasm ${requested} but it failed to start`);
      return choice('wasm', [requested, `using ${how}`], probes);
    }
    const probe = prefer === 'webgpu' ? webgpu : prefer === 'webgl' ? webgl : undefined;
    if (probe && !probe.available) throw new Error(`backend ${prefer} ${requested} but ${probe.detail}`);
    if (!(await activate(prefer))) throw new Error(`backend ${prefer} ${requested} but it failed to start`);
    return choice(prefer, probe ? [requested, probe.detail] : [requested], probes);
  }

  const notes: string[] = [];
  const gpuCandidates: [BrowserBackend, GpuProbe][] = [
    ['webgpu', webgpu!],
    ['webgl', webgl!],
  ];
  for (const [name, probe] of gpuCandidates) {
    if (probe.available && !probe.software) {
      if (await activate(name)) return choice(name, [...notes, `${probe.detail}: using ${name}`], probes);
      notes.push(`${probe.detail} failed to start`);
    } else if (probe.software) {
      notes.push(`${probe.detail}, which is slower than wasm`);
    } else {
      notes.push(probe.detail);
    }
  }
  const wasm = await activateWasm(options.wasmPath);
  if (wasm) return choice('wasm', [...notes, `using ${wasm}`], probes);
  notes.push('wasm failed to start');
  for (const [name, probe] of gpuCandidates) {
    if (probe.software && (await activate(name))) return choice(name, [...notes, `using the software ${name} adapter`], probes);
  }
  await activate('cpu');
  return choice('cpu', [...notes, 'using the pure-JS cpu backend'], probes);
}

/** Reads `?backend=` (webgpu | webgl | wasm | cpu); anything else means automatic selection. */
export function backendFromQuery(search: string): BrowserBackend | 'auto' {
  const v = new URLSearchParams(search).get('backend');
  return (BROWSER_BACKENDS as readonly string[]).includes(v ?? '') ? (v as BrowserBackend) : 'auto';
}
