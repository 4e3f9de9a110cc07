/**
 * @tessera/client-browser: join a Tessera task from a browser tab and train on the fastest real
 * tfjs backend the tab has (hardware WebGPU → WebGL → wasm → cpu). The round logic is
 * `@tessera/protocol`'s `ClientSession`, shared with the Node client.
 */
export { TesseraBrowserClient, subjectOf, type TesseraBrowserClientOptions } from './client.js';
export { BrowserTrainer } from './trainer.js';
export { BROWSER_BACKENDS, backendFromQuery, probeWebGl, probeWebGpu, selectBrowserBackend, type BackendChoice, type BrowserBackend, type GpuProbe, type SelectBackendOptions } from './backend.js';
export {
  DEMO_SHARD_FILE,
  decodeDemoShard,
  encodeDemoShard,
  featureSize,
  labelOfPath,
  loadCsvFile,
  loadDemoShard,
  loadImageFolder,
  LocalDataError,
  parseCsv,
  parseShard,
  shardForClient,
  splitEvery,
  type BrowserDataset,
  type CsvOptions,
  type ImageFolderOptions,
  type LocalData,
  type ShardSpec,
} from './data.js';
