import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { type OutboxStore, PruneOutbox, QUEUES, redisConnection } from '../src/index.ts';

const prefix = `evop-test-${randomBytes(4).toString('hex')}`;
const connections: Redis[] = [];
const queues: Queue[] = [];
const pruneQueue = async () => {
  const connection = redisConnection();
  connections.push(connection);
  const queue = new Queue(QUEUES.prune, { connection, prefix });
  queues.push(queue);
  await queue.waitUntilReady();
  return { queue, connection };
};
after(async () => {
  const { queue } = await pruneQueue();
  await queue.obliterate({ force: true });
  await Promise.allSettled(queues.map((q) => q.close())); // the refusing one has no connection to close
  for (const c of connections) c.disconnect();
});

/** The job rows' outbox columns, as PostgreSQL's `jobOutbox` keeps them. */
function rows(...ids: string[]): OutboxStore & { waiting: Set<string> } {
  const waiting = new Set(ids);
  return {
    waiting,
    pending: async () => [...waiting],
    markEnqueued: async (id) => {
      waiting.delete(id);
    },
  };
}

test('a job Redis refuses at once stays pending for the sweeper: the submission is not an error', async () => {
  const store = rows('job-1');
  const { queue: refusing, connection } = await pruneQueue();
  connection.disconnect(); // every command now fails at once ("Connection is closed")
  assert.equal(await new PruneOutbox(refusing, store).submit('job-1'), false);
  assert.deepEqual([...store.waiting], ['job-1']);

  const { queue } = await pruneQueue();
  assert.equal(await new PruneOutbox(queue, store).sweep(), 1);
  assert.deepEqual((await queue.getJob('job-1'))?.data, { jobId: 'job-1' });
  assert.deepEqual([...store.waiting], []);
});

test('a job whose row cannot be marked is enqueued, and left pending (enqueuing again is harmless)', async () => {
  const { queue } = await pruneQueue();
  const store: OutboxStore = {
    pending: async () => ['job-2'],
    markEnqueued: async () => {
      throw new Error('PostgreSQL is away');
    },
  };
  assert.equal(await new PruneOutbox(queue, store).submit('job-2'), false);
  assert.ok(await queue.getJob('job-2'));
});
