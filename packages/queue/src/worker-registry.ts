import type { Redis } from 'ioredis';

/** What a worker says of itself in each heartbeat. */
export interface WorkerInfo {
  id: string;
  host: string;
  pid: number;
  /** The execution provider sessions run on (cpu, cuda) and the device. */
  provider: string;
  device: string;
  threads: number;
  /** Models (manifest sha256) with an evaluator loaded. */
  models: string[];
  /** Tasks completed per queue since the worker started. */
  tasks: Record<string, number>;
  /** Masks × windows evaluated per second, over the worker's life. */
  rowsPerSecond: number;
  /** Fraction of its life the worker spent processing tasks. */
  busy: number;
  startedAt: string;
  heartbeatAt: string;
}

const key = (prefix: string, id: string) => `${prefix}:workers:${id}`;

/**
 * Workers register by heartbeat: a key that expires `ttlSeconds` after the last one, so a worker that dies
 * leaves the list on its own.
 */
export async function heartbeat(
  redis: Redis,
  prefix: string,
  info: WorkerInfo,
  ttlSeconds: number,
): Promise<void> {
  await redis.set(key(prefix, info.id), JSON.stringify(info), 'EX', ttlSeconds);
}

export async function unregister(redis: Redis, prefix: string, id: string): Promise<void> {
  await redis.del(key(prefix, id));
}

/** The workers that sent a heartbeat within their time to live. */
export async function listWorkers(redis: Redis, prefix: string): Promise<WorkerInfo[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', key(prefix, '*'), 'COUNT', 200);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  if (keys.length === 0) return [];
  const values = await redis.mget(...keys);
  return values
    .filter((v): v is string => v !== null)
    .map((v) => JSON.parse(v) as WorkerInfo)
    .sort((a, b) => a.id.localeCompare(b.id));
}
