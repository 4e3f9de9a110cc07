export { createDataset, DataError, featureSize, labelHistogram, splitHeldOut, subset } from './dataset.js';
export type { DataErrorCode, Dataset, HeldOutSplit, SplitDataset } from './dataset.js';
export { createPrng } from './prng.js';
export type { Prng, Seed } from './prng.js';
export { loadMnist, loadMnistAll } from './mnist.js';
export type { LoadMnistOptions } from './mnist.js';
export {
  encodeIdxImages,
  encodeIdxLabels,
  IDX_IMAGES_MAGIC,
  IDX_LABELS_MAGIC,
  idxToDataset,
  loadIdxDir,
  parseIdxImages,
  parseIdxLabels,
} from './idx.js';
export type { IdxImages, LoadIdxOptions } from './idx.js';
export { loadCsv, parseCsv, parseShape } from './csv.js';
export type { CsvOptions, LoadCsvOptions } from './csv.js';
export { parsePartitionScheme, partition } from './partition.js';
export type { PartitionScheme } from './partition.js';
export { loadDataSpec, parseDataSpec, shardFor } from './spec.js';
export type { DataSpec, ShardOptions } from './spec.js';
