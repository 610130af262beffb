import { PrefixEvaluator } from '@evop/pipeline';
import type { FitnessResult, FitnessTask } from '@evop/queue';
import type { Models } from './models.ts';
import type { WindowSets } from './window-sets.ts';

/**
 * What a worker does with a fitness task: the model's evaluator and the token windows (sha256-checked, cached),
 * then fidelity f measured on the first ⌈f·n⌉ windows, exactly as `evop prune` measures it.
 */
export function fitnessProcessor(models: Models, windows: WindowSets) {
  return async (task: FitnessTask, signal: AbortSignal): Promise<FitnessResult> => {
    const evaluator = await models.evaluator(task, task.granularity);
    const set = await windows.get(task.windowsSha256);
    const clusters = task.clustersSha256 ? await windows.clusters(task.clustersSha256) : undefined;
    const prefixes = new PrefixEvaluator(evaluator, set, clusters, task.calibrationWindows);
    const results = await prefixes.evaluate(
      task.masks.map((mask) => ({ mask, fidelity: task.fidelity })),
      signal,
    );
    if (results.length !== task.masks.length)
      throw new Error(`fitness task: ${results.length} results for ${task.masks.length} masks`);
    return results;
  };
}
