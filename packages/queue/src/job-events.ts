import type { GenerationRecord } from '@evop/core';
import type { Redis } from 'ioredis';

/** A job's status as the API reports it. */
export interface JobStatusEvent {
  type: 'status';
  status: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
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
