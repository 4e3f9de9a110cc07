/**
 * A task's differential-privacy settings, validated where they enter the system (task creation,
 * REST bodies, persisted task state).
 */
import { z } from 'zod';

/** Where noise is added: nowhere, once by the server, split across clients, or by each client. */
export const privacyModeSchema = z.enum(['off', 'central', 'distributed', 'local']);

/** DP mode of a task. */
export type PrivacyMode = z.infer<typeof privacyModeSchema>;

/**
 * Adaptive clipping (Andrew et al. 2021). Each field is optional; absent ones mean the paper's
 * recommendations: targetQuantile 0.5, learningRate 0.2, and the task's clipNorm as initialClip.
 */
export const adaptiveClipConfigSchema = z.strictObject({
  targetQuantile: z
    .number()
    .gt(0, 'adaptiveClip.targetQuantile must be in (0, 1)')
    .lt(1, 'adaptiveClip.targetQuantile must be in (0, 1)')
    .optional(),
  learningRate: z.number().positive('adaptiveClip.learningRate must be > 0').optional(),
  initialClip: z.number().positive('adaptiveClip.initialClip must be > 0').optional(),
});

/** A privacy budget: the task stops once the accountant's ε at δ would exceed `epsilon`. */
export const privacyBudgetSchema = z.strictObject({
  epsilon: z.number().positive('budget.epsilon must be > 0'),
  delta: z.number().gt(0, 'budget.delta must be in (0, 1)').lt(1, 'budget.delta must be in (0, 1)'),
});

/**
 * DP settings of a task. `noiseMultiplier` is z (noise std / clip norm); `clipNorm` is C, the L2
 * bound on each client's update (the starting C when `adaptiveClip` is on). `adaptiveClip: true`
 * means adaptive clipping with the defaults of {@link adaptiveClipConfigSchema}.
 * Unknown keys are rejected, so a misspelt setting cannot silently fall back to no privacy.
 */
export const privacyConfigSchema = z
  .strictObject({
    mode: privacyModeSchema,
    noiseMultiplier: z.number().min(0, 'noiseMultiplier must be >= 0'),
    clipNorm: z.number().positive('clipNorm must be > 0'),
    adaptiveClip: z.union([z.boolean(), adaptiveClipConfigSchema]).optional(),
    budget: privacyBudgetSchema.optional(),
    /** δ at which ε is reported when there is no budget (default 1e-5). */
    delta: z.number().gt(0, 'delta must be in (0, 1)').lt(1, 'delta must be in (0, 1)').optional(),
  })
  .superRefine((config, ctx) => {
    if (config.mode !== 'off' && !(config.noiseMultiplier > 0)) {
      ctx.addIssue({
        code: 'custom',
        path: ['noiseMultiplier'],
        message: `noiseMultiplier must be > 0 when mode is '${config.mode}'`,
      });
    }
  });

/** A validated task DP configuration. */
export type PrivacyConfig = z.infer<typeof privacyConfigSchema>;
