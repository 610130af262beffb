import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError, parseEnv } from './parse-env.ts';

const schema = z.object({
  DATABASE_URL: z.string().url().default('postgresql://evop:evop@127.0.0.1:5432/evop'),
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  EVOP_QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, - and _')
    .default('evop'),
  EVOP_ARTIFACT_DIR: z
    .string()
    .min(1)
    .default(join(homedir(), '.cache', 'evop', 'artifacts')),
  EVOP_API_URL: z.string().url().default('http://127.0.0.1:3000'),
  EVOP_SERVICE_TOKEN: z.string().min(16, 'at least 16 characters').optional(),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().default('0.0.0.0'),
  EVOP_MAX_UPLOAD_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(8 * 1024 ** 3),
  EVOP_RATE_LIMIT: z.coerce.number().int().positive().default(600),
  EVOP_ANONYMOUS_RATE_LIMIT: z.coerce.number().int().positive().default(60),
  EVOP_TENANT_MAX_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(256 * 1024 ** 3),
  EVOP_GC_GRACE_MS: z.coerce.number().int().min(0).default(3_600_000),
  EVOP_GC_INTERVAL_MS: z.coerce.number().int().positive().default(600_000),
  EVOP_WORKER_CACHE_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(64 * 1024 ** 3),
  EVOP_WORKER_MODELS: z.coerce.number().int().positive().default(2),
  EVOP_COORDINATOR_CONCURRENCY: z.coerce.number().int().positive().default(8),
  EVOP_COORDINATOR_LOCK_MS: z.coerce.number().int().positive().default(30_000),
  EVOP_MASKS_PER_TASK: z.coerce.number().int().positive().default(8),
  EVOP_MAX_SEQ_LEN: z.coerce.number().int().min(2).default(4096),
  EVOP_MAX_WINDOWS: z.coerce.number().int().min(2).default(4096),
  EVOP_MAX_CLUSTERS: z.coerce.number().int().positive().default(64),
  EVOP_MAX_BUDGET: z.coerce.number().int().positive().default(100_000),
  EVOP_MAX_TASK_LIMIT: z.coerce.number().int().positive().default(10_000),
  EVOP_WORKER_MEMORY_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(8 * 1024 ** 3),
  EVOP_TENANT_MAX_ACTIVE_JOBS: z.coerce.number().int().positive().default(64),
  EVOP_WORKER_ID: z.string().min(1).optional(),
  EVOP_WORKER_LOCK_MS: z.coerce.number().int().positive().default(60_000),
  EVOP_SHUTDOWN_MS: z.coerce.number().int().positive().default(60_000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

/** Where the service's processes find each other and keep their state; documented in .env.example. */
export interface ServiceConfig {
  databaseUrl: string;
  redisUrl: string;
  /** Redis key prefix of queues, events and the worker registry (tests use their own). */
  queuePrefix: string;
  /** The API's artifact store; a coordinator's or worker's local cache of fetched artifacts. */
  artifactDir: string;
  /** Where coordinators and workers reach the API. */
  apiUrl: string;
  /** The shared secret coordinators and workers present to the API's /internal routes. */
  serviceToken: string | undefined;
  port: number;
  host: string;
  maxUploadBytes: number;
  /** Requests per minute per API key. */
  rateLimit: number;
  /**
   * Requests per minute per client IP without a valid API key (missing, wrong or revoked); past it, that IP's
   * requests are refused before their key is looked up.
   */
  anonymousRateLimit: number;
  /** Bytes of models and datasets one tenant may keep. */
  tenantMaxBytes: number;
  /** An artifact no model, dataset, calibration or result names is removed once unused this long. */
  gcGraceMs: number;
  /** How often the API collects unused artifacts (besides after each deletion). */
  gcIntervalMs: number;
  /** Bytes a worker's artifact cache may hold before it removes the least recently used artifacts. */
  workerCacheBytes: number;
  /** Models a worker keeps ready (files linked, graphs written); the least recently used beyond are removed. */
  workerModels: number;
  /** Jobs one coordinator runs at once (each mostly waits on its tasks). */
  coordinatorConcurrency: number;
  /** A dead coordinator's jobs are taken over this long after it died. */
  coordinatorLockMs: number;
  /** Masks per fitness task. */
  masksPerTask: number;
  /**
   * The largest job spec this service takes (the API answers 422 naming the field and the variable): seqLen,
   * calibration + heldOut windows, clusters, budget, taskLimit. `evop prune` has none: it runs on the user's machine.
   */
  maxSeqLen: number;
  maxWindows: number;
  maxClusters: number;
  maxBudget: number;
  maxTaskLimit: number;
  /** Memory one worker task may need (estimated from the model and the spec at submission; `taskMemoryBytes`). */
  workerMemoryBytes: number;
  /** Jobs one tenant may have queued or running at once; past it a submission is answered 429. */
  tenantMaxActiveJobs: number;
  /** A worker's name in GET /v1/workers (default: host-pid). */
  workerId: string | undefined;
  /** A dead worker's tasks are retried this long after it died. */
  workerLockMs: number;
  /**
   * On SIGTERM, how long a process waits for the work in hand (a worker's tasks, a coordinator's hand-back of its
   * jobs, the API's requests in flight) before it exits anyway; what it held goes back to the queues.
   */
  shutdownMs: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

export function serviceConfig(env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  const v = parseEnv(schema, env);
  return {
    databaseUrl: v.DATABASE_URL,
    redisUrl: v.REDIS_URL,
    queuePrefix: v.EVOP_QUEUE_PREFIX,
    artifactDir: v.EVOP_ARTIFACT_DIR,
    apiUrl: v.EVOP_API_URL,
    serviceToken: v.EVOP_SERVICE_TOKEN,
    port: v.PORT,
    host: v.HOST,
    maxUploadBytes: v.EVOP_MAX_UPLOAD_BYTES,
    rateLimit: v.EVOP_RATE_LIMIT,
    anonymousRateLimit: v.EVOP_ANONYMOUS_RATE_LIMIT,
    tenantMaxBytes: v.EVOP_TENANT_MAX_BYTES,
    gcGraceMs: v.EVOP_GC_GRACE_MS,
    gcIntervalMs: v.EVOP_GC_INTERVAL_MS,
    workerCacheBytes: v.EVOP_WORKER_CACHE_BYTES,
    workerModels: v.EVOP_WORKER_MODELS,
    coordinatorConcurrency: v.EVOP_COORDINATOR_CONCURRENCY,
    coordinatorLockMs: v.EVOP_COORDINATOR_LOCK_MS,
    masksPerTask: v.EVOP_MASKS_PER_TASK,
    maxSeqLen: v.EVOP_MAX_SEQ_LEN,
    maxWindows: v.EVOP_MAX_WINDOWS,
    maxClusters: v.EVOP_MAX_CLUSTERS,
    maxBudget: v.EVOP_MAX_BUDGET,
    maxTaskLimit: v.EVOP_MAX_TASK_LIMIT,
    workerMemoryBytes: v.EVOP_WORKER_MEMORY_BYTES,
    tenantMaxActiveJobs: v.EVOP_TENANT_MAX_ACTIVE_JOBS,
    workerId: v.EVOP_WORKER_ID,
    workerLockMs: v.EVOP_WORKER_LOCK_MS,
    shutdownMs: v.EVOP_SHUTDOWN_MS,
    logLevel: v.LOG_LEVEL,
  };
}

/** The service token, required by processes that talk to /internal routes. */
export function requireServiceToken(config: ServiceConfig): string {
  if (!config.serviceToken)
    throw new ConfigError(
      'EVOP_SERVICE_TOKEN is not set: api, coordinator and workers share it (≥ 16 characters)',
    );
  return config.serviceToken;
}
