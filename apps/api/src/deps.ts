import type { Logger, ServiceConfig } from '@evop/config';
import type { ArtifactStore } from '@evop/data';
import type { Database } from '@evop/db';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobEventHub } from './job-event-hub.ts';

/** What the API's routes share. */
export interface ApiDeps {
  config: ServiceConfig;
  db: Database;
  /** Commands (publish, worker registry); the hub holds its own subscriber connection. */
  redis: Redis;
  events: JobEventHub;
  store: ArtifactStore;
  pruneQueue: Queue;
  log: Logger;
}
