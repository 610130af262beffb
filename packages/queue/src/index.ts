export { awaitTasks } from './await-tasks.ts';
export { redisConnection } from './connection.ts';
export { JobCancels } from './job-cancels.ts';
export {
  channels,
  type GenerationEvent,
  isFinished,
  JOB_STATUSES,
  type JobEvent,
  type JobStatus,
  type JobStatusEvent,
  publishJobEvent,
} from './job-events.ts';
export { type OutboxStore, PruneOutbox, type PruneOutboxOptions } from './prune-outbox.ts';
export { QueueEvaluator, type QueueEvaluatorOptions } from './queue-evaluator.ts';
export { type RunTaskOptions, runTask, taskId } from './run-task.ts';
export { type TaskWorkerOptions, taskWorker } from './task-worker.ts';
export {
  type EmbedTask,
  type ExportResult,
  type ExportTask,
  embedResult,
  embedTask,
  exportResult,
  exportTask,
  type FitnessResult,
  type FitnessTask,
  fitnessResult,
  fitnessTask,
  type ModelRef,
  parseTask,
  QUEUES,
  type QueueName,
  TaskPayloadError,
} from './tasks.ts';
export { heartbeat, listWorkers, unregister, type WorkerInfo } from './worker-registry.ts';
