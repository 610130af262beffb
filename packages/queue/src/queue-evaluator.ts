import type { Candidate, EvaluationResult, Evaluator } from '@evop/core';
import type { Queue, QueueEvents } from 'bullmq';
import { awaitTasks } from './await-tasks.ts';
import { taskOptions } from './run-task.ts';
import { type FitnessTask, fitnessResult, QUEUES } from './tasks.ts';

export interface QueueEvaluatorOptions {
  queue: Queue;
  events: QueueEvents;
  /** What every task of this job carries besides its fidelity and masks. */
  task: Omit<FitnessTask, 'fidelity' | 'masks'>;
  /** Masks per task (default 8): enough rows to batch well on a worker, small enough to spread. */
  masksPerTask?: number;
  /** Attempts per task before the search fails (default 3), e.g. when a worker dies mid-task. */
  attempts?: number;
  /** Longest wait for one task, in ms (default 30 minutes). */
  taskTimeoutMs?: number;
}

/**
 * The search's Evaluator over BullMQ: candidates become `fitness` tasks fanned out to any number of workers.
 * Task ids are derived from their content, so a task added twice (a coordinator resumed after a crash) is one
 * task; results come back in candidate order.
 */
export class QueueEvaluator implements Evaluator {
  constructor(private readonly options: QueueEvaluatorOptions) {}

  async evaluate(candidates: readonly Candidate[], signal?: AbortSignal): Promise<EvaluationResult[]> {
    const { queue, events, task, masksPerTask = 8, attempts = 3, taskTimeoutMs = 30 * 60_000 } = this.options;
    const chunks: { fidelity: number; indices: number[] }[] = [];
    for (const fidelity of new Set(candidates.map((c) => c.fidelity))) {
      const indices = candidates.flatMap((c, i) => (c.fidelity === fidelity ? [i] : []));
      for (let s = 0; s < indices.length; s += masksPerTask)
        chunks.push({ fidelity, indices: indices.slice(s, s + masksPerTask) });
    }
    const jobs = await queue.addBulk(
      chunks.map(({ fidelity, indices }) => {
        const data: FitnessTask = { ...task, fidelity, masks: indices.map((i) => candidates[i]!.mask) };
        return {
          name: QUEUES.fitness,
          data,
          opts: taskOptions(task.jobId, data, attempts),
        };
      }),
    );
    const results = await awaitTasks(jobs, events, taskTimeoutMs, signal);
    const out = new Array<EvaluationResult>(candidates.length);
    results.forEach((value, j) => {
      const parsed = fitnessResult.parse(value);
      chunks[j]!.indices.forEach((i, k) => {
        out[i] = parsed[k]!;
      });
    });
    return out;
  }
}
