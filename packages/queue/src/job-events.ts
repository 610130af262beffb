import type { GenerationRecord } from '@evop/core';
import type { Redis } from 'ioredis';

/** A job's statuses; the last three are final. */
export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** Whether a job has ended (succeeded, failed or cancelled): nothing about it changes any more. */
export const isFinished = (status: string) =>
  status === 'succeeded' || status === 'failed' || status === 'cancelled';

/** A job's status as the API reports it. */
export interface JobStatusEvent {
  type: 'status';
  status: JobStatus;
  stage: string | null;
  progress: number;
  error?: string | null;
}

/** One generation of one of the job's searches, as checkpointed. */
export interface GenerationEvent {
  type: 'generation';
  strategy: string;
  record: GenerationRecord;
}

export type JobEvent = JobStatusEvent | GenerationEvent;

/** Redis pub/sub channels: progress events per job, and cancellation requests for coordinators. */
export const channels = {
  jobEvents: (prefix: string, jobId: string) => `${prefix}:job-events:${jobId}`,
  jobEventsPattern: (prefix: string) => `${prefix}:job-events:*`,
  cancel: (prefix: string) => `${prefix}:cancel`,
};

/** Publishes a job event. Events only wake listeners up: PostgreSQL holds everything they report. */
export async function publishJobEvent(
  redis: Redis,
  prefix: string,
  jobId: string,
  event: JobEvent,
): Promise<void> {
  await redis.publish(channels.jobEvents(prefix, jobId), JSON.stringify(event));
}
