import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { QUEUES, redisConnection } from '@evop/queue';
import { Queue } from 'bullmq';
import type { ServiceClient } from './service-client.ts';
import { finishedReport, type Service, SMALL_SPEC, startService, uploadFixtures } from './service-fixture.ts';

let service: Service;
let api: ServiceClient;
let ids: { modelId: string; datasetId: string };
let exports: Queue;

before(async () => {
  service = await startService(1);
  api = await service.client('acme');
  ids = await uploadFixtures(api);
  exports = new Queue(QUEUES.export, { connection: redisConnection(), prefix: service.prefix });
});
after(async () => {
  await exports?.close();
  await (exports?.opts.connection as { quit?: () => Promise<unknown> } | undefined)?.quit?.();
  await service?.close();
});

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 300_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) assert.fail(`${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test("cancel stops a task running on a worker (all of HellaSwag's zero-shot scoring), which then takes other work", async () => {
  const spec = { ...SMALL_SPEC, tasks: ['hellaswag'], taskLimit: 10_000 };
  const submitted = await api.request('POST', '/v1/jobs', { ...ids, spec });
  assert.equal(submitted.status, 202, JSON.stringify(submitted.json));
  const id = submitted.json.id as string;
  await until('the export task running', async () =>
    (await exports.getActiveCount()) > 0 ? true : undefined,
  );
  // The job's stage says when the task has reached the zero-shot scoring (what comes before is short here, but
  // not on a loaded machine).
  await until('the zero-shot stage', async () => {
    const { stage } = (await api.request('GET', `/v1/jobs/${id}`)).json as { stage: string | null };
    return stage?.startsWith('zero-shot') ? true : undefined;
  });
  await new Promise((r) => setTimeout(r, 3000)); // well into scoring 10,042 items × 4 endings
  const cancelledAt = Date.now();
  assert.equal((await api.request('POST', `/v1/jobs/${id}/cancel`)).status, 202);
  await until('the export task ended', async () =>
    (await exports.getActiveCount()) === 0 ? true : undefined,
  );
  const seconds = (Date.now() - cancelledAt) / 1000;
  const job = await api.waitFor(id, (j) => j.status !== 'running', 60_000);
  assert.equal(job.status, 'cancelled');
  process.stderr.write(`the running export task ended ${seconds.toFixed(1)} s after cancel\n`);
  // Scoring all of HellaSwag takes this model minutes here; a task stopped between batches ends in seconds.
  assert.ok(seconds < 30, `the task ran on for ${seconds} s`);
  assert.equal(await exports.getFailedCount(), 0, 'a cancelled task is not kept as failed');

  // The worker is free: another job runs to its end.
  const next = await api.request('POST', '/v1/jobs', { ...ids, spec: SMALL_SPEC });
  await finishedReport(api, next.json.id as string);
});
