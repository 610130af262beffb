import type { EmbedTask } from '@evop/queue';
import type { Models } from './models.ts';
import type { WindowSets } from './window-sets.ts';

/** Calibration inputs from the dense model: pooled hidden states per window, or per-unit cosines. */
export function embedProcessor(models: Models, windows: WindowSets) {
  return async (task: EmbedTask, signal: AbortSignal): Promise<number[]> => {
    const evaluator = await models.evaluator(task, task.granularity);
    const set = await windows.get(task.windowsSha256);
    return task.kind === 'pooled'
      ? Array.from(await evaluator.pooledStates(set, signal))
      : evaluator.unitCosines(set, signal);
  };
}
