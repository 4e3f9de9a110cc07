import { readFile } from 'node:fs/promises';
import { createDataset, DataError, featureSize, splitHeldOut } from './dataset.js';
import type { Dataset, SplitDataset } from './dataset.js';
import type { Seed } from './prng.js';

/** Options for parsing a CSV dataset. */
export interface CsvOptions {
  /** Header name of the label column (default `label`); every other column is a numeric feature. */
  readonly label?: string;
  /** Feature shape, e.g. `'28x28x1'` or `[28, 28, 1]`; default `[numFeatures]`. */
  readonly shape?: string | readonly number[];
  /** Divide every feature by this (e.g. 255 for 0..255 pixels); default 1. */
  readonly scale?: number;
  /** Name used in error messages (default `'CSV'`). */
  readonly source?: string;
}

/** Largest integer label accepted as a class id; larger ones are almost certainly not classes. */
const MAX_INTEGER_LABEL = 65535;

/** Parse a shape string like `28x28x1` (or `784`). */
export function parseShape(text: string): number[] {
  if (!/^\s*\d+(\s*x\s*\d+)*\s*$/i.test(text)) {
    throw new DataError('ERR_DATA_SPEC', `shape '${text}' is not of the form 28x28x1`);
  }
  const dims = text.split(/x/i).map((d) => Number(d.trim()));
  if (dims.some((d) => d < 1)) throw new DataError('ERR_DATA_SPEC', `shape '${text}' has a zero dimension`);
  return dims;
}

interface CsvRecord {
  readonly fields: string[];
  /** 1-based line number where the record starts. */
  readonly line: number;
}

/**
 * RFC 4180-style records: comma separated, `"quoted, fields"` with `""` escapes and embedded
 * newlines, LF or CRLF line ends; blank lines are skipped. Lines without quotes take a fast path.
 */
function* csvRecords(text: string, source: string): Generator<CsvRecord> {
  let pos = text.charCodeAt(0) === 0xfeff ? 1 : 0; // BOM
  let line = 1;
  while (pos < text.length) {
    let eol = text.indexOf('\n', pos);
    if (eol === -1) eol = text.length;
    let lineText = text.slice(pos, eol);
    if (!lineText.includes('"')) {
      if (lineText.endsWith('\r')) lineText = lineText.slice(0, -1);
      if (lineText.trim() !== '') yield { fields: lineText.split(','), line };
      pos = eol + 1;
      line++;
      continue;
    }
    const startLine = line;
    const fields: string[] = [];
    let field = '';
    let inQuotes = false;
    let i = pos;
    for (;;) {
      if (i >= text.length) {
        if (inQuotes) throw new DataError('ERR_DATA_FORMAT', `${source}: line ${startLine}: unterminated quoted field`);
        fields.push(field);
        break;
      }
      const c = text[i] as string;
      if (inQuotes) {
        if (c === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
          } else {
            inQuotes = false;
            i++;
          }
        } else {
          if (c === '\n') line++;
          field += c;
          i++;
        }
      } else if (c === '"' && field.trim() === '') {
        field = '';
        inQuotes = true;
        i++;
      } else if (c === ',') {
        fields.push(field);
        field = '';
        i++;
      } else if (c === '\n' || (c === '\r' && text[i + 1] === '\n')) {
        fields.push(field);
        i += c === '\n' ? 1 : 2;
        break;
      } else {
        field += c;
        i++;
      }
    }
    pos = i;
    line++;
    yield { fields, line: startLine };
  }
}

/** Parsed rows before labels are encoded (train and test must share one label encoding). */
interface RawCsv {
  readonly xs: Float32Array;
  readonly rawLabels: string[];
  readonly featureShape: number[];
  /** Header names of the feature columns, in order. */
  readonly featureNames: string[];
  readonly source: string;
}

function parseRaw(text: string, options: CsvOptions): RawCsv {
  const source = options.source ?? 'CSV';
  const labelName = options.label ?? 'label';
  const scale = options.scale ?? 1;
  if (!Number.isFinite(scale) || scale <= 0) {
    throw new DataError('ERR_DATA_SPEC', `${source}: scale must be a positive number, got ${scale}`);
  }
  const records = csvRecords(text, source);
  const first = records.next();
  if (first.done === true) throw new DataError('ERR_DATA_FORMAT', `${source}: empty file, expected a header row`);
  const header = first.value.fields.map((h) => h.trim());
  const labelCols = header.flatMap((h, i) => (h === labelName ? [i] : []));
  if (labelCols.length !== 1) {
    const why = labelCols.length === 0 ? 'no' : `${labelCols.length} columns named`;
    throw new DataError(
      'ERR_DATA_FORMAT',
      `${source}: line ${first.value.line}: header has ${why} label column '${labelName}' (columns: ${header.slice(0, 8).join(', ')}${header.length > 8 ? ', …' : ''})`,
    );
  }
  const labelCol = labelCols[0] as number;
  const numFeatures = header.length - 1;
  if (numFeatures < 1) throw new DataError('ERR_DATA_FORMAT', `${source}: header has no feature columns`);

  let featureShape = [numFeatures];
  if (options.shape !== undefined) {
    featureShape = typeof options.shape === 'string' ? parseShape(options.shape) : [...options.shape];
    if (featureSize(featureShape) !== numFeatures) {
      throw new DataError(
        'ERR_DATA_SPEC',
        `${source}: shape ${featureShape.join('x')} has ${featureSize(featureShape)} values but the file has ${numFeatures} feature columns`,
      );
    }
  }

  // Upper bound on rows (quoted newlines only lower it), so xs is allocated once.
  let capacity = 1;
  for (let p = text.indexOf('\n'); p !== -1; p = text.indexOf('\n', p + 1)) capacity++;
  let xs = new Float32Array(capacity * numFeatures);
  const rawLabels: string[] = [];
  let off = 0;
  for (const { fields, line } of records) {
    if (fields.length !== header.length) {
      throw new DataError('ERR_DATA_FORMAT', `${source}: line ${line}: expected ${header.length} fields, got ${fields.length}`);
    }
    for (let c = 0; c < fields.length; c++) {
      const raw = fields[c] as string;
      if (c === labelCol) {
        const y = raw.trim();
        if (y === '') throw new DataError('ERR_DATA_FORMAT', `${source}: line ${line}: empty label`);
        rawLabels.push(y);
        continue;
      }
      const v = raw.trim() === '' ? Number.NaN : Number(raw);
      if (!Number.isFinite(v)) {
        throw new DataError('ERR_DATA_FORMAT', `${source}: line ${line}, column '${header[c]}': non-numeric value '${raw}'`);
      }
      xs[off++] = v / scale;
    }
  }
  if (rawLabels.length === 0) throw new DataError('ERR_DATA_FORMAT', `${source}: no data rows after the header`);
  if (off < xs.length) xs = xs.slice(0, off);
  return { xs, rawLabels, featureShape, featureNames: header.filter((_, i) => i !== labelCol), source };
}

const INTEGER_LABEL = /^\+?\d+(\.0*)?$/;

/**
 * Encode labels of several files together: all integer-like → used as class ids
 * (numClasses = max + 1); otherwise strings → indices in sorted (code-unit) order.
 */
function encodeLabels(parts: readonly RawCsv[]): Dataset[] {
  const all = parts.flatMap((p) => p.rawLabels);
  let toId: (s: string) => number;
  let numClasses: number;
  let classNames: string[] | undefined;
  if (all.every((s) => INTEGER_LABEL.test(s))) {
    const max = all.reduce((m, s) => Math.max(m, Number(s)), 0);
    if (max > MAX_INTEGER_LABEL) {
      throw new DataError('ERR_DATA_FORMAT', `${parts[0]?.source}: integer label ${max} is too large for a class id (max ${MAX_INTEGER_LABEL})`);
    }
    toId = (s) => Number(s);
    numClasses = max + 1;
  } else {
    classNames = [...new Set(all)].sort();
    const ids = new Map(classNames.map((name, i) => [name, i]));
    toId = (s) => ids.get(s) as number;
    numClasses = classNames.length;
  }
  return parts.map((p) =>
    createDataset({
      xs: p.xs,
      labels: Int32Array.from(p.rawLabels, toId),
      featureShape: p.featureShape,
      numClasses,
      ...(classNames !== undefined ? { classNames } : {}),
    }),
  );
}

/**
 * Parse CSV text with a header row into a Dataset.
 * @example
 * parseCsv('a,b,label\n1,2,cat\n3,4,dog\n').classNames; // ['cat', 'dog']
 */
export function parseCsv(text: string, options: CsvOptions = {}): Dataset {
  return encodeLabels([parseRaw(text, options)])[0] as Dataset;
}

/** Options for `loadCsv`. */
export interface LoadCsvOptions extends Omit<CsvOptions, 'source'> {
  /** A separate test CSV with the same columns; without it a split of the file is held out. */
  readonly test?: string;
  /** Held-out examples when there is no test file (default 20%). */
  readonly heldOut?: number;
  /** Seed for the held-out split (default 'tessera'). */
  readonly seed?: Seed;
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new DataError('ERR_DATA_NOT_FOUND', `CSV file ${file} cannot be read: ${(err as Error).message}`, { cause: err });
  }
}

/** Load a CSV file (and optional test CSV) as train/test datasets sharing one label encoding. */
export async function loadCsv(file: string, options: LoadCsvOptions = {}): Promise<SplitDataset> {
  const trainRaw = parseRaw(await readText(file), { ...options, source: file });
  if (options.test === undefined) {
    const [all] = encodeLabels([trainRaw]) as [Dataset];
    const heldOut = options.heldOut ?? Math.max(1, Math.floor(all.n * 0.2));
    const { train, test } = splitHeldOut(all, heldOut, options.seed ?? 'tessera');
    return { train, test };
  }
  const testRaw = parseRaw(await readText(options.test), { ...options, source: options.test });
  if (testRaw.featureNames.join('\u0000') !== trainRaw.featureNames.join('\u0000')) {
    throw new DataError(
      'ERR_DATA_FORMAT',
      `${options.test}: feature columns differ from ${file} (${testRaw.featureNames.length} vs ${trainRaw.featureNames.length} columns, same names in the same order required)`,
    );
  }
  const [train, test] = encodeLabels([trainRaw, testRaw]) as [Dataset, Dataset];
  return { train, test };
}
