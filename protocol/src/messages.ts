import { z } from 'zod';
import { ERROR_CODES, type ErrorBody, ErrorCode, TesseraError } from './errors.js';
import { trainConfigSchema } from './task.js';

/** Bumped on any incompatible change to a message; history in SPEC.md. */
export const PROTOCOL_VERSION = 1;

const bytesSchema = z
  .custom<Uint8Array | ArrayBuffer>((v) => v instanceof Uint8Array || v instanceof ArrayBuffer, 'expected binary data')
  .transform((v) => (v instanceof Uint8Array ? v : new Uint8Array(v)));

/**
 * Many binary chunks (e.g. ciphertexts) as ONE attachment: their concatenation plus lengths.
 * socket.io's parser refuses packets with more than 10 attachments, and one buffer is cheaper.
 * Parsing yields the chunks as views.
 */
export const chunkedBytesSchema = z
  .object({ data: bytesSchema, lengths: z.array(z.number().int().min(0)).min(1).max(100_000) })
  .refine((c) => c.lengths.reduce((a, b) => a + b, 0) === c.data.byteLength, 'chunk lengths do not add up to the data')
  .transform(({ data, lengths }) => {
    const out: Uint8Array[] = [];
    let o = 0;
    for (const n of lengths) {
      out.push(data.subarray(o, o + n));
      o += n;
    }
    return out;
  });

/** Packs chunks for `chunkedBytesSchema`. */
export function joinChunks(chunks: readonly Uint8Array[]): { data: Uint8Array; lengths: number[] } {
  const lengths = chunks.map((c) => c.byteLength);
  const data = new Uint8Array(lengths.reduce((a, b) => a + b, 0));
  let o = 0;
  for (const c of chunks) {
    data.set(c, o);
    o += c.byteLength;
  }
  return { data, lengths };
}

export const tensorSpecSchema = z.object({
  name: z.string().min(1).max(256),
  shape: z.array(z.number().int().min(0).max(1 << 30)).max(8),
  // Any dtype name passes the schema; the codec rejects all but float32 with ERR_TENSOR_MISMATCH.
  dtype: z.string().min(1).max(16) as unknown as z.ZodLiteral<'float32'>,
});

export const encodedTensorsSchema = z.object({
  manifest: z.array(tensorSpecSchema).max(10_000),
  data: bytesSchema,
});

/** An Ed25519 public JWK (receipt keys, the key holder's signing key). */
export const ed25519JwkSchema = z.object({
  kty: z.literal('OKP'),
  crv: z.literal('Ed25519'),
  x: z.string().min(40).max(64),
  kid: z.string().max(128).optional(),
  alg: z.string().max(16).optional(),
});
export type Ed25519Jwk = z.infer<typeof ed25519JwkSchema>;

/** CKKS parameters as published by the key holder. */
export const heParamsSchema = z.object({
  polyModulusDegree: z.number().int().min(1024).max(65536),
  coeffModulusBits: z.array(z.number().int().min(1).max(61)).min(1).max(16),
  scaleBits: z.number().int().min(1).max(60),
});

/**
 * The key holder's public material: CKKS parameters and public key, signed (compact JWS, EdDSA)
 * with the key holder's own key over { params, publicKeySha256 }. Clients pin that key and verify
 * before encrypting; the server only relays it.
 */
export const hePublicationSchema = z.object({
  params: heParamsSchema,
  publicKey: z.custom<Uint8Array | ArrayBuffer>((v) => v instanceof Uint8Array || v instanceof ArrayBuffer, 'expected binary data').transform((v) => (v instanceof Uint8Array ? v : new Uint8Array(v))),
  keyholderJwk: ed25519JwkSchema,
  signature: z.string().min(1).max(4096),
});
export type HePublication = z.infer<typeof hePublicationSchema>;

const idSchema = z.string().min(1).max(128).regex(/^[A-Za-z0-9._:@-]+$/, 'letters, digits and . _ : @ - only');

export const joinRequestSchema = z.object({
  protocolVersion: z.number().int(),
  clientId: idSchema,
  platform: z.enum(['node', 'browser']),
  backend: z.string().min(1).max(64),
  backendReason: z.string().max(500).optional(),
  numTrainExamples: z.number().int().min(0),
  numTestExamples: z.number().int().min(0),
  taskId: idSchema.optional(),
  /** The client's receipt-signing key (Ed25519); required to submit encrypted updates. */
  receiptKey: ed25519JwkSchema.optional(),
});
export type JoinRequest = z.infer<typeof joinRequestSchema>;

export const taskAssignmentSchema = z.object({
  taskId: idSchema,
  name: z.string(),
  /** tfjs Layers topology (`model.toJSON()`), as a JSON string. */
  topology: z.string(),
  modelVersion: z.number().int().min(0),
  weights: encodedTensorsSchema,
  train: trainConfigSchema,
  maxPayloadBytes: z.number().int().positive(),
  totalRounds: z.number().int().min(1),
  /** Present for homomorphically encrypted tasks once the key holder has published its key. */
  he: hePublicationSchema.optional(),
});
export type TaskAssignment = z.infer<typeof taskAssignmentSchema>;

export const roundStartSchema = z.object({
  taskId: idSchema,
  roundId: z.number().int().min(1),
  modelVersion: z.number().int().min(0),
  /** Unix epoch milliseconds. */
  deadline: z.number().int(),
  train: trainConfigSchema,
  weights: encodedTensorsSchema,
  /** The client's privacy stage for this round: clip to clipNorm, then add N(0, noiseStd²) per coordinate. */
  privacy: z
    .object({
      mode: z.enum(['central', 'distributed', 'local']),
      clipNorm: z.number().positive(),
      noiseStd: z.number().min(0),
    })
    .optional(),
});
export type RoundStart = z.infer<typeof roundStartSchema>;

export const metricsSchema = z.record(z.string().max(64), z.number()).refine((m) => Object.keys(m).length <= 64, 'too many metrics');

export const plainUpdateSchema = z.object({ kind: z.literal('plain'), tensors: encodedTensorsSchema });
/** CKKS ciphertexts of Σ-ready weighted updates plus a receipt: JWS over their SHA-256 digests. */
export const ckksUpdateSchema = z.object({
  kind: z.literal('ckks'),
  ciphertexts: chunkedBytesSchema,
  receipt: z.string().min(1).max(1 << 20),
});
export const updatePayloadSchema = z.discriminatedUnion('kind', [plainUpdateSchema, ckksUpdateSchema]);
export type UpdatePayload = z.infer<typeof updatePayloadSchema>;

export const submissionSchema = z.object({
  taskId: idSchema,
  roundId: z.number().int().min(1),
  baseModelVersion: z.number().int().min(0),
  numExamples: z.number().int().min(1),
  metrics: metricsSchema,
  update: updatePayloadSchema,
  /** With DP: whether the update's norm was within the clip norm before clipping (adaptive clipping). */
  dp: z.object({ belowClip: z.boolean() }).optional(),
});
export type Submission = z.infer<typeof submissionSchema>;
/** A submission as it is sent (ciphertexts joined into one buffer). */
export type SubmissionWire = z.input<typeof submissionSchema>;

export const roundEndSchema = z.object({
  taskId: idSchema,
  roundId: z.number().int().min(1),
  status: z.enum(['completed', 'failed']),
  modelVersion: z.number().int().min(0),
  reason: z.string().optional(),
  metrics: metricsSchema.optional(),
});
export type RoundEnd = z.infer<typeof roundEndSchema>;

export const evaluateRequestSchema = z.object({
  taskId: idSchema,
  roundId: z.number().int().min(1),
  modelVersion: z.number().int().min(0),
  deadline: z.number().int(),
  weights: encodedTensorsSchema,
});
export type EvaluateRequest = z.infer<typeof evaluateRequestSchema>;

export const evaluateResultSchema = z.object({
  taskId: idSchema,
  roundId: z.number().int().min(1),
  modelVersion: z.number().int().min(0),
  numExamples: z.number().int().min(0),
  loss: z.number().finite(),
  accuracy: z.number().min(0).max(1),
});
export type EvaluateResult = z.infer<typeof evaluateResultSchema>;

export const taskDoneSchema = z.object({
  taskId: idSchema,
  status: z.enum(['done', 'failed', 'aborted', 'stopped']),
  modelVersion: z.number().int().min(0),
  reason: z.string().optional(),
});
export type TaskDone = z.infer<typeof taskDoneSchema>;

/** Server → key holder: decrypt this round's aggregate; the receipts prove who contributed. */
export const decryptRequestSchema = z.object({
  taskId: idSchema,
  roundId: z.number().int().min(1),
  length: z.number().int().min(1),
  aggregate: chunkedBytesSchema,
  receipts: z.array(z.object({ clientId: idSchema, receiptKey: ed25519JwkSchema, receipt: z.string().min(1).max(1 << 20) })).max(100_000),
});
export type DecryptRequest = z.infer<typeof decryptRequestSchema>;
export type DecryptRequestWire = z.input<typeof decryptRequestSchema>;

export const errorBodySchema = z.object({
  code: z.enum(ERROR_CODES as [ErrorCode, ...ErrorCode[]]),
  message: z.string(),
});

/** Every ack is either `{ ok: true, ... }` or `{ ok: false, error: { code, message } }`. */
export type Ack<T extends object = Record<never, never>> = ({ ok: true } & T) | { ok: false; error: ErrorBody };

export const joinAckSchema = z.union([
  z.object({ ok: z.literal(true), taskId: idSchema, clientId: idSchema }),
  z.object({ ok: z.literal(false), error: errorBodySchema }),
]);
export type JoinAck = Ack<{ taskId: string; clientId: string }>;

export const simpleAckSchema = z.union([
  z.object({ ok: z.literal(true) }),
  z.object({ ok: z.literal(false), error: errorBodySchema }),
]);
export type SimpleAck = Ack;

export const decryptAckSchema = z.union([
  z.object({ ok: z.literal(true), values: bytesSchema, weight: z.number().min(0) }),
  z.object({ ok: z.literal(false), error: errorBodySchema }),
]);
/** `values`: Σ wᵢ·Δᵢ as float64 little-endian bytes; `weight`: Σ wᵢ. */
export type DecryptAck = Ack<{ values: Uint8Array; weight: number }>;

/** Validates an inbound message; throws ERR_INVALID_MESSAGE with the schema's first complaint. */
export function parseMessage<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const r = schema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue && issue.path.length ? ` at ${issue.path.join('.')}` : '';
    throw new TesseraError(ErrorCode.INVALID_MESSAGE, `invalid ${what}${where}: ${issue?.message ?? 'schema mismatch'}`);
  }
  return r.data;
}
