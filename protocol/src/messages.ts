import { z } from 'zod';
import { ERROR_CODES, type ErrorBody, ErrorCode, TesseraError } from './errors.js';
import { trainConfigSchema } from './task.js';

/** Bumped on any incompatible change to a message; history in SPEC.md. */
export const PROTOCOL_VERSION = 1;

const bytesSchema = z
  .custom<Uint8Array | ArrayBuffer>((v) => v instanceof Uint8Array || v instanceof ArrayBuffer, 'expected binary data')
  .transform((v) => (v instanceof Uint8Array ? v : new Uint8Array(v)));

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
export const updatePayloadSchema = z.discriminatedUnion('kind', [plainUpdateSchema]);

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
