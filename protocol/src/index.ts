export * from './errors.js';
export * from './codec.js';
export * from './messages.js';
export * from './events.js';
export * from './task.js';
export * from './session.js';
export * from './privacy/index.js';
export { registerWasmTrainingKernels, type WasmTrainingKernelOptions } from './tfjs/wasm-kernels.js';
