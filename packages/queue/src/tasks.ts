import { type Finalized, searchSpecSchema } from '@evop/pipeline/control';
import { z } from 'zod';

/** Queue names (DESIGN.md "Queues and payloads"). */
export const QUEUES = { prune: 'prune', fitness: 'fitness', embed: 'embed', export: 'export' } as const;
export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'a lowercase hex sha256');
const mask = z.string().regex(/^[01]+$/, 'a bit string of 0/1');
const granularity = z.enum(['layer', 'sublayer']);
/**
 * `layoutSha256` names the model's layout as the API found and stored it (a JSON artifact): workers use it instead
 * of running discovery again, and refuse one of another discovery version.
 */
const modelRef = { modelSha256: sha256, layoutSha256: sha256 };

/**
 * A batch of masks to measure for one job: ids, content hashes and masks only. `modelSha256` names the model's
 * manifest artifact; the worker fetches it, the model's files and the token windows by sha256 and caches them.
 * Fidelity f measures the first ⌈f·n⌉ windows, n the first `calibrationWindows` (default: all), past fidelity 1
 * the validation windows after them; `clustersSha256` (a JSON array, one cluster per window) makes the results carry
 * per-cluster sums.
 */
export const fitnessTask = z.object({
  jobId: z.string().min(1),
  ...modelRef,
  windowsSha256: sha256,
  clustersSha256: sha256.optional(),
  calibrationWindows: z.number().int().min(1).optional(),
  granularity,
  fidelity: z.number().gt(0),
  masks: z.array(mask).min(1),
});
export type FitnessTask = z.infer<typeof fitnessTask>;

const nllSum = z.object({ nllSum: z.number(), count: z.number() });
/** One result per mask, in the task's order. */
export const fitnessResult = z.array(nllSum.extend({ clusters: z.array(nllSum).optional() }));
export type FitnessResult = z.infer<typeof fitnessResult>;

/**
 * What the dense model says of windows, for calibration: `pooled`, each window's mean final hidden state
 * (row-major [windows, hidden]); `cosines`, each unit's mean input/output cosine over the windows.
 */
export const embedTask = z.object({
  jobId: z.string().min(1),
  ...modelRef,
  windowsSha256: sha256,
  granularity,
  kind: z.enum(['pooled', 'cosines']),
});
export type EmbedTask = z.infer<typeof embedTask>;
export const embedResult = z.array(z.number());

const searchSummary = z.object({
  name: z.string(),
  best: z.object({ mask, fitness: z.number() }),
  evaluations: z.number().int().min(0),
});

/** The finalize stage: export the best mask, evaluate it and the peers' on the held-out windows, time both. */
export const exportTask = z.object({
  jobId: z.string().min(1),
  ...modelRef,
  tokenizerSha256: sha256,
  tokenizerName: z.string().min(1),
  /** The tokenizer_config.json uploaded beside a tokenizer.json, when there was one. */
  tokenizerConfigSha256: sha256.optional(),
  spec: searchSpecSchema,
  heldOutSha256: sha256,
  heldOutClustersSha256: sha256,
  /** Data sets measured one by one (finalize's `datasets`): windows artifacts, named as the report names them. */
  datasets: z
    .array(z.object({ name: z.string().min(1), domain: z.enum(['in', 'out']), windowsSha256: sha256 }))
    .default([]),
  searches: z.array(searchSummary).min(1),
  /** The front's other points (finalize's `front`): each exported and uploaded with a manifest of its own. */
  front: z.array(searchSummary).default([]),
});
export type ExportTask = z.infer<typeof exportTask>;

/** A task's model: its manifest and its stored layout. */
export type ModelRef = Pick<FitnessTask, 'modelSha256' | 'layoutSha256'>;

/** The finalize stage's numbers, and the pruned models' manifest artifacts (each front point's too), uploaded. */
export type ExportResult = Omit<Finalized, 'path' | 'front'> & {
  modelManifestSha256: string;
  front: (Omit<Finalized['front'][number], 'dir'> & { modelManifestSha256: string })[];
};

const estimate = z.object({ median: z.number(), low: z.number(), high: z.number() });
const phaseComparison = z
  .object({
    dense: estimate,
    pruned: estimate,
    ratio: estimate,
    verdict: z.enum(['faster', 'slower', 'inconclusive']),
    rounds: z.number().int().positive(),
  })
  .passthrough();
const exportResultShape = z.object({
  modelManifestSha256: sha256,
  mask,
  pruned: z.array(z.string()),
  consistency: z.number(),
  table: z.array(z.object({ method: z.string(), mask, perplexity: z.number() }).passthrough()),
  latency: z
    .object({ prefill: phaseComparison, decode: phaseComparison.nullable() })
    .passthrough()
    .nullable(),
  failed: z.array(z.object({ stage: z.string(), error: z.string() })),
  onnxruntime: z.string(),
  front: z.array(
    z
      .object({ units: z.number().int().min(1), mask, model: z.string(), modelManifestSha256: sha256 })
      .passthrough(),
  ),
});
export const exportResult = z.custom<ExportResult>((v) => exportResultShape.safeParse(v).success, {
  message: 'not an export result',
});

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
