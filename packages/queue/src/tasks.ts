import { z } from 'zod';

/** Queue names (DESIGN.md "Queues and payloads"). */
export const QUEUES = { prune: 'prune', fitness: 'fitness', embed: 'embed', export: 'export' } as const;

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'a lowercase hex sha256');
const mask = z.string().regex(/^[01]+$/, 'a bit string of 0/1');

/**
 * A batch of masks to measure for one job: ids, content hashes and masks only; the worker fetches the model and
 * the token windows by their sha256 and caches them.
 */
export const fitnessTask = z.object({
  jobId: z.string().min(1),
  modelSha256: sha256,
  windowsSha256: sha256,
  granularity: z.enum(['layer', 'sublayer']),
  fidelity: z.number().gt(0).lte(1),
  masks: z.array(mask).min(1),
});
export type FitnessTask = z.infer<typeof fitnessTask>;

const nllSum = z.object({ nllSum: z.number(), count: z.number() });
/** One result per mask, in the task's order. */
export const fitnessResult = z.array(nllSum.extend({ clusters: z.array(nllSum).optional() }));
export type FitnessResult = z.infer<typeof fitnessResult>;

/** A payload that does not match its queue's schema; names the field and the reason. */
export class TaskPayloadError extends Error {
  override readonly name = 'TaskPayloadError';
}

export function parseTask<T>(schema: z.ZodType<T>, payload: unknown, queue: string): T {
  const parsed = schema.safeParse(payload);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw new TaskPayloadError(`${queue} task: ${issue.path.join('.') || '(payload)'}: ${issue.message}`);
}
