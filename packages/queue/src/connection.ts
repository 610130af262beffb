import { Redis } from 'ioredis';

/**
 * A Redis connection for BullMQ: `maxRetriesPerRequest: null` is what its workers require (they block on Redis
 * and must not give up on a slow reply). BullMQ does not close connections it is given: the owner does.
 */
export function redisConnection(url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'): Redis {
  return new Redis(url, { maxRetriesPerRequest: null });
}
