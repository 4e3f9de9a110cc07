import * as tf from '@tensorflow/tfjs';
import { registerWasmTrainingKernels } from '@tessera/protocol';

export interface BackendChoice {
  backend: string;
  reason: string;
}

export type BackendPreference = 'auto' | 'tensorflow' | 'wasm' | 'cpu';

async function tryImport(name: string): Promise<boolean> {
  try {
    await import(name);
    return true;
  } catch {
    return false;
  }
}

/**
 * Run after the wasm backend is active: registers the gradient kernels tfjs-wasm lacks
 * (Conv2DBackpropFilter, depthwise backprops) and our faster Conv2DBackpropInput, so CNNs train on wasm.
 */
let afterWasm: () => string[] = () => registerWasmTrainingKernels({ replaceConv2DBackpropInput: true });
/** Replaces the post-wasm hook (tests). */
export function onWasmSelected(fn: () => string[]): void {
  afterWasm = fn;
}

/**
 * Picks the fastest real tfjs backend available in this process: native TensorFlow (CUDA via
 * tfjs-node-gpu, else CPU via tfjs-node; optional peer packages) → wasm → cpu. `threads` sets
 * the wasm backend's thread count where the build supports it.
 */
export async function selectBackend(pref: BackendPreference = 'auto', opts: { threads?: number } = {}): Promise<BackendChoice> {
  const notes: string[] = [];
  if (pref === 'auto' || pref === 'tensorflow') {
    for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
      if ((await tryImport(pkg)) && (await tf.setBackend('tensorflow'))) {
        await tf.ready();
        return { backend: 'tensorflow', reason: `${pkg} (native TensorFlow) is installed` };
      }
    }
    notes.push('@tensorflow/tfjs-node(-gpu) not installed');
    if (pref === 'tensorflow') throw new Error('backend tensorflow requested but @tensorflow/tfjs-node is not installed');
  }
  if (pref === 'auto' || pref === 'wasm') {
    try {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      if (opts.threads !== undefined) wasm.setThreadsCount(opts.threads);
      if (await tf.setBackend('wasm')) {
        await tf.ready();
        const added = afterWasm();
        notes.push(`wasm${added.length ? ` with Tessera's ${added.join(', ')} kernels` : ''}`);
        return { backend: 'wasm', reason: notes.join('; ') };
      }
      notes.push('wasm backend failed to initialize');
    } catch (e) {
      notes.push(`wasm unavailable (${(e as Error).message})`);
    }
    if (pref === 'wasm') throw new Error(`backend wasm requested but unavailable: ${notes.join('; ')}`);
  }
  await tf.setBackend('cpu');
  await tf.ready();
  notes.push('using the pure-JS cpu backend');
  return { backend: 'cpu', reason: notes.join('; ') };
}

/** Whether the active backend can compute every gradient kernel a model needs. */
export function missingKernels(names: readonly string[]): string[] {
  const b = tf.getBackend();
  return names.filter((n) => !tf.getKernel(n, b));
}
