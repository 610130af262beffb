import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { PruneReport } from '@evop/pipeline';
import { ownPostgres, ownRedis } from './own-servers.ts';
import type { ServiceClient } from './service-client.ts';
import {
  assertUndisturbed,
  finishedReport,
  type Service,
  SMALL_SPEC,
  startService,
  uploadFixtures,
} from './service-fixture.ts';

// Servers of this file's own, restarted mid-job; the machine's shared PostgreSQL and Redis are never touched.
const pgDir = mkdtempSync(join(tmpdir(), 'evop-pg-'));
const redisDir = mkdtempSync(join(tmpdir(), 'evop-redis-'));
let redis: Awaited<ReturnType<typeof ownRedis>>;
let postgres: Awaited<ReturnType<typeof ownPostgres>>;
let service: Service;
let api: ServiceClient;
let ids: { modelId: string; datasetId: string };

before(async () => {
  redis = await ownRedis(redisDir);
  postgres = await ownPostgres(pgDir);
  process.env.EVOP_TEST_DATABASE_URL = postgres.url;
  process.env.REDIS_URL = redis.url;
  service = await startService(2, { REDIS_URL: redis.url });
  api = await service.client('acme');
  ids = await uploadFixtures(api);
});
after(async () => {
  await service?.close();
  await redis?.stop();
  postgres?.stop();
  rmSync(pgDir, { recursive: true, force: true });
  rmSync(redisDir, { recursive: true, force: true });
});

/** Submits a job, runs `outage` once after its first generation, and returns its report when it has finished. */
async function jobThrough(seed: number, outage: () => Promise<void>): Promise<PruneReport> {
  const submitted = await api.request('POST', '/v1/jobs', { ...ids, spec: { ...SMALL_SPEC, seed } });
  const id = submitted.json.id as string;
  let done: Promise<void> | undefined;
  await api
    .events(`/v1/jobs/${id}/events`, (e) => {
      if (e.event === 'generation' && !done) done = outage();
    })
    .catch(() => {}); // the stream may be cut by the outage; the job is polled below
  await done;
  return finishedReport(api, id);
}

test('Redis restarted mid-job: the job ends as an undisturbed run', async () => {
  const report = await jobThrough(41, async () => {
    await redis.stop();
    await new Promise((r) => setTimeout(r, 2000));
    await redis.start();
  });
  await assertUndisturbed(service, report, 41);
});

test('PostgreSQL restarted mid-job: the API answers 503 meanwhile, then recovers; the job ends as an undisturbed run', async () => {
  let during: { ready: number; jobs: number; type: string } | undefined;
  const report = await jobThrough(43, async () => {
    postgres.stop();
    const ready = await fetch(`${service.stack.apiUrl}/readyz`);
    const jobs = await api.request('GET', '/v1/jobs');
    during = { ready: ready.status, jobs: jobs.status, type: jobs.type };
    await new Promise((r) => setTimeout(r, 2000));
    postgres.start();
  });
  assert.deepEqual(during, { ready: 503, jobs: 503, type: 'application/problem+json; charset=utf-8' });
  assert.equal((await fetch(`${service.stack.apiUrl}/readyz`)).status, 200);
  await assertUndisturbed(service, report, 43);
});

test('Redis stopped between a job row and its enqueue: the submission answers 202, a retry completes it, the job runs', async () => {
  await redis.stop();
  const body = { ...ids, spec: { ...SMALL_SPEC, seed: 45 } };
  const headers = { 'idempotency-key': 'outbox-45' };
  const submitted = await api.request('POST', '/v1/jobs', body, headers);
  assert.equal(submitted.status, 202, 'the job is stored although the queue is away');
  const id = submitted.json.id as string;
  const row = await service.db.db.job.findUniqueOrThrow({ where: { id } });
  assert.equal(row.enqueuedAt, null, 'its enqueue is pending');
  await redis.start();
  const retried = await api.request('POST', '/v1/jobs', body, headers);
  assert.equal(retried.json.id, id, 'the retry is the same job');
  await assertUndisturbed(service, await finishedReport(api, id), 45);
  assert.notEqual((await service.db.db.job.findUniqueOrThrow({ where: { id } })).enqueuedAt, null);
});

test('a job row whose enqueue never happened (the API died after the commit) is enqueued by a coordinator', async () => {
  const earlier = await service.db.db.job.findFirstOrThrow({ where: { status: 'succeeded' } });
  // The row exactly as the API commits it before enqueuing, and nothing on the queue.
  const row = await service.db.db.job.create({
    data: {
      tenantId: earlier.tenantId,
      modelId: earlier.modelId,
      datasetId: earlier.datasetId,
      spec: { ...(earlier.spec as object), seed: 47 },
    },
  });
  assert.equal(row.enqueuedAt, null);
  await assertUndisturbed(service, await finishedReport(api, row.id), 47);
});
