import type { Logger, ServiceConfig } from '@evop/config';
import type { ArtifactStore } from '@evop/data';
import type { Database } from '@evop/db';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { ArtifactCollector } from './artifact-collector.ts';
import type { JobEventHub } from './job-event-hub.ts';
import type { UploadChecker } from './upload-checker.ts';

/** What the API's routes share. */
export interface ApiDeps {
  config: ServiceConfig;
  db: Database;
  /** Commands (publish, worker registry); the hub holds its own subscriber connection. */
  redis: Redis;
  events: JobEventHub;
  store: ArtifactStore;
  /** Checks uploaded models and corpora off the event loop. */
  checker: UploadChecker;
  /** Removes artifacts nothing names any more. */
  collector: ArtifactCollector;
  pruneQueue: Queue;
  log: Logger;
}
