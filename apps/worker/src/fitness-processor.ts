import { join } from 'node:path';
import { type ArtifactStore, TokenWindows } from '@evop/data';
import { discoverLayers, readModel } from '@evop/onnx';
import type { FitnessResult, FitnessTask } from '@evop/queue';
import { type InferencePool, OnnxEvaluator } from '@evop/runtime';

/**
 * What a worker does with a fitness task: the model and the token windows come from the artifact store by
 * sha256 (verified on read), an evaluator per (model, granularity) is kept, and fidelity f measures the first
 * ⌈f·n⌉ windows (the coordinator orders them so that every prefix is balanced).
 */
export function fitnessProcessor(store: ArtifactStore, pool: InferencePool, cacheDir: string) {
  const evaluators = new Map<string, Promise<OnnxEvaluator>>();
  const evaluatorFor = (task: FitnessTask) => {
    const key = `${task.modelSha256}/${task.granularity}`;
    let entry = evaluators.get(key);
    if (!entry) {
      const model = readModel(store.verifiedPath(task.modelSha256));
      entry = OnnxEvaluator.create({
        pool,
        model,
        layout: discoverLayers(model.proto),
        granularity: task.granularity,
        cacheDir: join(cacheDir, 'graphs'),
      });
      entry.catch(() => evaluators.delete(key));
      evaluators.set(key, entry);
    }
    return entry;
  };
  return async (task: FitnessTask): Promise<FitnessResult> => {
    const evaluator = await evaluatorFor(task);
    const windows = TokenWindows.deserialize(store.read(task.windowsSha256));
    const take = Math.max(1, Math.ceil(task.fidelity * windows.count));
    const subset = windows.select(Array.from({ length: take }, (_, i) => i));
    return (await evaluator.evaluate(task.masks, subset)).map(({ nllSum, count }) => ({ nllSum, count }));
  };
}
