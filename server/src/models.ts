import * as tf from '@tensorflow/tfjs';
import { ErrorCode, TesseraError, type ModelSpec, type NamedTensor } from '@tessera/protocol';

/** A model as the server holds it: the Layers topology clients rebuild, and the initial weights. */
export interface ModelDefinition {
  topology: string;
  weights: NamedTensor[];
}

/** Builds a preset for 28×28×1 inputs and 10 classes. Layer names are fixed so weight names are stable. */
export function buildPreset(preset: 'mlp' | 'cnn'): tf.Sequential {
  const m = tf.sequential({ name: preset });
  if (preset === 'mlp') {
    m.add(tf.layers.flatten({ inputShape: [28, 28, 1], name: 'flatten' }));
    m.add(tf.layers.dense({ units: 128, activation: 'relu', name: 'dense1' }));
    m.add(tf.layers.dense({ units: 10, activation: 'softmax', name: 'output' }));
  } else {
    m.add(tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 32, kernelSize: 3, activation: 'relu', name: 'conv1' }));
    m.add(tf.layers.maxPooling2d({ poolSize: 2, name: 'pool1' }));
    m.add(tf.layers.conv2d({ filters: 64, kernelSize: 3, activation: 'relu', name: 'conv2' }));
    m.add(tf.layers.maxPooling2d({ poolSize: 2, name: 'pool2' }));
    m.add(tf.layers.flatten({ name: 'flatten' }));
    m.add(tf.layers.dense({ units: 128, activation: 'relu', name: 'dense1' }));
    m.add(tf.layers.dense({ units: 10, activation: 'softmax', name: 'output' }));
  }
  return m;
}

/** Reads a model's weights with stable names (the layer-scoped original names, not tfjs' uniquified ones). */
export function weightsOf(model: tf.LayersModel): NamedTensor[] {
  return model.weights.map((w) => {
    const t = w.read();
    const values = t.dataSync() as Float32Array;
    return { name: w.originalName, shape: [...t.shape], values: Float32Array.from(values) };
  });
}

let backendReady: Promise<void> | undefined;
async function ensureCpu(): Promise<void> {
  backendReady ??= (async () => {
    await tf.setBackend('cpu');
    await tf.ready();
    // The server only initializes weights with tfjs; its "install tfjs-node to speed up" banner
    // (printed on the cpu backend's first write) would mislead operators.
    (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
  })();
  return backendReady;
}

/** Resolves a task's model spec into topology + initial weights, checking custom weights against the topology. */
export async function defineModel(spec: ModelSpec): Promise<ModelDefinition> {
  await ensureCpu();
  let model: tf.LayersModel;
  if ('preset' in spec) {
    model = buildPreset(spec.preset);
  } else {
    const topology = typeof spec.topology === 'string' ? (JSON.parse(spec.topology) as object) : spec.topology;
    try {
      model = await tf.models.modelFromJSON({ modelTopology: topology } as tf.io.ModelJSON);
    } catch (e) {
      throw new TesseraError(ErrorCode.INVALID_CONFIG, `model topology does not load in tfjs: ${(e as Error).message}`);
    }
  }
  try {
    const weights = weightsOf(model);
    if (!('preset' in spec) && spec.weights) {
      if (spec.weights.length !== weights.length) {
        throw new TesseraError(ErrorCode.INVALID_CONFIG, `model has ${weights.length} weight tensors, ${spec.weights.length} given`);
      }
      spec.weights.forEach((w, i) => {
        const target = weights[i]!;
        if (w.shape.join('x') !== target.shape.join('x') || w.values.length !== target.values.length) {
          throw new TesseraError(ErrorCode.INVALID_CONFIG, `weight ${i} (${w.name}) has shape [${w.shape}], topology needs [${target.shape}]`);
        }
        target.values = Float32Array.from(w.values);
      });
    }
    const topologyJson = model.toJSON(undefined, true) as string;
    return { topology: topologyJson, weights };
  } finally {
    model.dispose();
  }
}
