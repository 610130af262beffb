import { OBJECTIVES, STRATEGIES, type StrategyName } from '@evop/core';
import { TASKS, type TaskName } from '@evop/data';
import { z } from 'zod';
import { PipelineError } from './pipeline-error.ts';

const target = z.union([
  z.object({ units: z.number().int().min(1) }).strict(),
  z.object({ fraction: z.number().gt(0).lt(1) }).strict(),
  z.object({ paramFraction: z.number().gt(0).lt(1) }).strict(),
]);

/**
 * How a model is pruned, apart from where the model and the data come from: the one description both
 * `evop prune` and a service job run. Defaults are those of `evop prune`. Its maxima are hard bounds, past which no
 * machine runs the spec (a count near 2^53 also loses integer precision); a service sets lower ones of its own
 * (`checkServiceMaxima`), and a model's context bounds `seqLen` (`checkContext`).
 */
export const searchSpecSchema = z
  .object({
    target: target.describe('units to prune: {units: N}, {fraction: F} of units or {paramFraction: F}'),
    /**
     * More targets, for a quality–speed front: one more search of `strategy` per target (no peers), each seeded
     * from the best masks of the targets next to it, each best mask exported and measured as `target`'s is.
     */
    front: z
      .array(target)
      .max(16)
      .default([])
      .describe('more targets, each searched, exported and measured: the quality–speed front'),
    granularity: z.enum(['layer', 'sublayer']).default('layer'),
    strategy: z.enum(STRATEGIES).default('evop'),
    objective: z.enum(OBJECTIVES).default('mean'),
    seed: z.number().int().min(0).default(0),
    /** Evaluation budget of evop / evopress / random, in full-fidelity equivalents. */
    budget: z.number().int().min(1).max(1_000_000_000).default(1000),
    /** Calibration and held-out windows; the CCDS pool is 4 × calibration + held-out windows. */
    calibration: z.number().int().min(1).max(1_048_576).default(32),
    heldOut: z.number().int().min(1).max(1_048_576).default(64),
    clusters: z.number().int().min(1).max(65_536).default(8),
    sampling: z.enum(['ccds', 'random']).default('ccds'),
    seqLen: z.number().int().min(2).max(1_048_576).default(256),
    tasks: z.array(z.enum(Object.keys(TASKS) as [TaskName, ...TaskName[]])).default([]),
    taskLimit: z.number().int().min(1).max(1_048_576).default(200),
    /** Also run the peer methods on the same calibration windows and evaluator. */
    baselines: z.boolean().default(false),
    /** `attn-mlp`: every mask removes as many attention blocks as MLP blocks (EvoPress's split; sublayer only). */
    balance: z.enum(['none', 'attn-mlp']).default('none'),
  })
  .strict();

export type SearchSpec = z.infer<typeof searchSpecSchema>;

/** The value each field takes when a spec leaves it out (the target has none). */
export const SEARCH_SPEC_DEFAULTS: Omit<SearchSpec, 'target'> = (({ target: _, ...defaults }) => defaults)(
  searchSpecSchema.parse({ target: { units: 1 } }),
);

/**
 * A spec from fields given one at a time (`evop prune`'s flags; absent ones take their defaults), checked by the
 * schema: a value out of its bounds is a PipelineError naming the field (`seqLen`, `target.units`).
 */
export function parseSearchSpec(fields: Record<string, unknown>): SearchSpec {
  const parsed = searchSpecSchema.safeParse(fields);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw new PipelineError(issue.path.join('.') || 'spec', issue.message);
}

/** The peer methods `baselines` adds, per granularity. */
export const PEERS: Record<SearchSpec['granularity'], StrategyName[]> = {
  layer: ['shortgpt', 'sleb', 'evopress', 'random'],
  sublayer: ['shortgpt', 'blockpruner', 'evopress', 'random'],
};

/** The strategies a spec runs, its own first. */
export function strategiesOf(spec: SearchSpec): StrategyName[] {
  return [
    spec.strategy,
    ...(spec.baselines ? PEERS[spec.granularity].filter((s) => s !== spec.strategy) : []),
  ];
}
