export { TesseraClient, subjectOf, type TesseraClientOptions } from './client.js';
export { TfjsTrainer } from './trainer.js';
export { selectBackend, onWasmSelected, missingKernels, type BackendChoice, type BackendPreference } from './backend.js';
export * from './data/index.js';
export { KeyHolder, type KeyHolderOptions } from './keyholder.js';
export { DeviceCredentials } from './device-credentials.js';
