import { z } from 'zod';
import { privacyConfigSchema } from './privacy/config.js';

/** Local training hyper-parameters sent to clients with each round. */
export const trainConfigSchema = z.object({
  epochs: z.number().int().min(1).max(1000).default(1),
  batchSize: z.number().int().min(1).max(65536).default(32),
  learningRate: z.number().positive().max(100).default(0.001),
  optimizer: z.enum(['sgd', 'adam', 'momentum', 'rmsprop']).default('adam'),
  /** FedProx proximal term μ; 0 = plain local training. Reserved for a FedProx strategy. */
  proximalMu: z.number().min(0).default(0),
});
export type TrainConfig = z.infer<typeof trainConfigSchema>;

const presetModelSchema = z.object({ preset: z.enum(['mlp', 'cnn']) });
const layersModelSchema = z.object({
  /** A tfjs Layers topology as `model.toJSON()` writes it (string or object). */
  topology: z.union([z.string(), z.record(z.string(), z.unknown())]),
  /** Initial weights; when absent the server initializes them from the topology. */
  weights: z
    .array(z.object({ name: z.string(), shape: z.array(z.number().int().min(0)), values: z.array(z.number()) }))
    .optional(),
});
export const modelSpecSchema = z.union([presetModelSchema, layersModelSchema]);
export type ModelSpec = z.infer<typeof modelSpecSchema>;

export const strategySpecSchema = z.object({
  name: z.string().min(1).default('fedavg'),
  options: z.record(z.string(), z.unknown()).default({}),
});

/** A training task as an operator defines it (JSON file or REST body). */
export const taskSpecSchema = z
  .object({
    name: z.string().min(1).max(200).default('task'),
    model: modelSpecSchema.default({ preset: 'mlp' }),
    train: trainConfigSchema.default(trainConfigSchema.parse({})),
    rounds: z.number().int().min(1).max(100_000).default(3),
    clientsPerRound: z.number().int().min(1).default(3),
    minClients: z.number().int().min(1).default(2),
    roundDeadlineSeconds: z.number().positive().max(86_400).default(120),
    /** Cohort over-selection factor, so stragglers do not stall the round (Bonawitz et al. 2019). */
    overSelection: z.number().min(1).max(10).default(1),
    evaluateEvery: z.number().int().min(0).default(1),
    /** Evaluation round deadline (defaults to the training deadline). */
    evaluateDeadlineSeconds: z.number().positive().max(86_400).optional(),
    /** How long to wait for enough eligible clients before a round starts. */
    waitForClientsSeconds: z.number().positive().max(86_400).default(600),
    /** Connected clients to wait for (up to waitForClientsSeconds) before a round starts; default minClients. */
    waitForClients: z.number().int().min(1).optional(),
    strategy: strategySpecSchema.default({ name: 'fedavg', options: {} }),
    /** Reject plaintext updates whose L2 norm exceeds this bound (ERR_NORM_BOUND). */
    maxUpdateNorm: z.number().positive().optional(),
    /** Encrypt updates with CKKS; a separate key holder decrypts only round aggregates. */
    he: z.boolean().default(false),
    /** Client-level differential privacy (DP-FedAvg); absent or mode 'off' = none. */
    privacy: privacyConfigSchema.optional(),
    /** Stop the task as failed after this many failed rounds in a row. */
    maxConsecutiveFailures: z.number().int().min(1).default(5),
  })
  .superRefine((t, ctx) => {
    if (t.minClients > t.clientsPerRound) {
      ctx.addIssue({ code: 'custom', path: ['minClients'], message: `minClients (${t.minClients}) must be ≤ clientsPerRound (${t.clientsPerRound})` });
    }
  });
export type TaskSpec = z.infer<typeof taskSpecSchema>;
export type TaskSpecInput = z.input<typeof taskSpecSchema>;

/** Names under which the server's strategies register; the registry refuses any other name. */
export const StrategyNames = {
  FEDAVG: 'fedavg',
} as const;
export type StrategyName = (typeof StrategyNames)[keyof typeof StrategyNames];
