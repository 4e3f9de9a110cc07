import {
  engine,
  Optimizer,
  tensor,
  type serialization,
  type Tensor,
  type Variable,
} from '@tensorflow/tfjs-core';

/** Moments below this are stored as 0 (see {@link HostAdamOptimizer}). */
const FLUSH_BELOW = 1e-30;

/**
 * Adam with tfjs' `AdamOptimizer` update rule, computed in JS over each variable's values:
 * m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², w ← w − lr · m̂ / (√v̂ + ε), m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ).
 *
 * For backends whose tensors live in host memory (wasm, cpu): one pass per variable instead of
 * about fifteen elementwise kernels, and moments smaller than 1e-30 are stored as 0. Without that,
 * a weight whose gradient is exactly 0 (a dead ReLU unit) has m decay into float32 subnormals and
 * stick at the smallest one (0.9 × 1 ulp rounds back to 1 ulp); wasm has no flush-to-zero mode, so
 * every later step's elementwise kernels run at subnormal speed (measured: Adam's kernels on the
 * mlp's first layer 2–5× slower after ~800 steps). The flush changes an update by under lr·1e-23.
 * The optimizer state is host memory; `dispose` only drops it.
 */
export class HostAdamOptimizer extends Optimizer {
  static readonly className = 'HostAdam';
  private readonly m = new Map<string, Float32Array>();
  private readonly v = new Map<string, Float32Array>();
  private readonly epsilon: number;
  /** β₁ᵗ and β₂ᵗ for the next step, kept in float32 as tfjs' accBeta variables are. */
  private accBeta1: number;
  private accBeta2: number;

  constructor(
    readonly learningRate: number,
    readonly beta1 = 0.9,
    readonly beta2 = 0.999,
    epsilon?: number,
  ) {
    super();
    this.epsilon = epsilon ?? engine().backend.epsilon();
    this.accBeta1 = Math.fround(beta1);
    this.accBeta2 = Math.fround(beta2);
  }

  override applyGradients(variableGradients: Parameters<Optimizer['applyGradients']>[0]): void {
    const entries: [string, Tensor | undefined][] = Array.isArray(variableGradients)
      ? variableGradients.map((g) => [g.name, g.tensor])
      : Object.keys(variableGradients).map((name) => [name, variableGradients[name]]);
    const { beta1: b1, beta2: b2, learningRate: lr, epsilon: eps } = this;
    const c1 = Math.fround(1 - this.accBeta1);
    const c2 = Math.fround(1 - this.accBeta2);
    for (const [name, gradient] of entries) {
      if (gradient == null) continue;
      const variable = engine().registeredVariables[name] as Variable | undefined;
      if (variable == null) throw new Error(`HostAdam: no variable named '${name}'`);
      const g = gradient.dataSync() as Float32Array;
      const w = variable.dataSync() as Float32Array;
      let m = this.m.get(name);
      let v = this.v.get(name);
      if (m == null || v == null || m.length !== w.length) {
        m = new Float32Array(w.length);
        v = new Float32Array(w.length);
        this.m.set(name, m);
        this.v.set(name, v);
      }
      // A fresh array: backends may keep the one given to tensor() without copying.
      const next = new Float32Array(w.length);
      for (let i = 0; i < w.length; i++) {
        const gi = g[i]!;
        let mi = b1 * m[i]! + (1 - b1) * gi;
        let vi = b2 * v[i]! + (1 - b2) * gi * gi;
        if (Math.abs(mi) < FLUSH_BELOW) mi = 0;
        if (vi < FLUSH_BELOW) vi = 0;
        m[i] = mi;
        v[i] = vi;
        next[i] = w[i]! - (lr * (mi / c1)) / (Math.sqrt(vi / c2) + eps);
      }
      const t = tensor(next, variable.shape, 'float32');
      variable.assign(t);
      t.dispose();
    }
    this.accBeta1 = Math.fround(this.accBeta1 * b1);
    this.accBeta2 = Math.fround(this.accBeta2 * b2);
    this.incrementIterations();
  }

  override dispose(): void {
    this.m.clear();
    this.v.clear();
    super.dispose();
  }

  override getConfig(): serialization.ConfigDict {
    return { learningRate: this.learningRate, beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon };
  }
}
