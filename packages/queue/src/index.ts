export { redisConnection } from './connection.ts';
export { type FitnessWorkerOptions, fitnessWorker } from './fitness-worker.ts';
export { QueueEvaluator, type QueueEvaluatorOptions } from './queue-evaluator.ts';
export {
  type FitnessResult,
  type FitnessTask,
  fitnessResult,
  fitnessTask,
  parseTask,
  QUEUES,
  TaskPayloadError,
} from './tasks.ts';
