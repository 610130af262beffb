import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { QUEUES, redisConnection } from '@evop/queue';
import { Queue } from 'bullmq';
import type { ServiceClient } from './service-client.ts';
import {
  assertUndisturbed,
  finishedReport,
  type Service,
  SMALL_SPEC,
  startService,
  uploadFixtures,
} from './service-fixture.ts';

let service: Service;
let api: ServiceClient;
let ids: { modelId: string; datasetId: string };

before(async () => {
  service = await startService(2);
  api = await service.client('acme');
  ids = await uploadFixtures(api);
});
after(() => service?.close());

/** Every file under a folder, recursively. */
const filesUnder = (dir: string): string[] =>
  readdirSync(dir).flatMap((n) =>
    statSync(join(dir, n)).isDirectory() ? filesUnder(join(dir, n)) : [join(dir, n)],
  );

test('kill -9 of a worker mid-search: its task goes to another, and the job ends as an undisturbed run', async () => {
  const submitted = await api.request('POST', '/v1/jobs', { ...ids, spec: { ...SMALL_SPEC, seed: 21 } });
  const id = submitted.json.id as string;
  let victim = '';
  const streamed = api.events(`/v1/jobs/${id}/events`, (e) => {
    if (e.event !== 'generation' || victim) return;
    const worker = service.stack.processes.find((p) => p.role === 'worker')!;
    victim = worker.name;
    service.killed.add(victim);
    worker.child.kill('SIGKILL');
  });
  const report = await finishedReport(api, id);
  await streamed;
  assert.ok(victim, 'a worker was killed');
  await assertUndisturbed(service, report, 21);
});

test('a corrupted cached artifact is refused by its sha256 and fetched again', async () => {
  const survivor = service.stack.processes.find((p) => p.role === 'worker' && !service.killed.has(p.name))!;
  survivor.child.kill('SIGTERM');
  assert.equal(await survivor.exited, 0);
  service.killed.add(survivor.name); // stopped here; its successor below is checked at the end
  const cache = join(service.dir, 'stack', survivor.name, 'artifacts');
  const cached = filesUnder(cache).filter((f) => /^[0-9a-f]{64}$/.test(f.split('/').at(-1)!));
  assert.ok(cached.length >= 4, `the worker had cached the model, windows and clusters (${cached.length})`);
  for (const file of cached) writeFileSync(file, Buffer.concat([readFileSync(file), Buffer.from('corrupt')]));

  await service.stack.addWorker(survivor.name); // the same cache folder
  const submitted = await api.request('POST', '/v1/jobs', { ...ids, spec: { ...SMALL_SPEC, seed: 23 } });
  await assertUndisturbed(service, await finishedReport(api, submitted.json.id), 23);
  // The job needed the model's file: the corrupt copy was dropped and the right bytes fetched again.
  const onnx = (await api.request('GET', `/v1/models/${ids.modelId}`)).json.files[0].sha256 as string;
  const file = cached.find((f) => f.endsWith(onnx))!;
  assert.ok(file, 'the model file had been cached');
  assert.equal(createHash('sha256').update(readFileSync(file)).digest('hex'), onnx);
  service.killed.delete(survivor.name);
});

test('a run superseded by a newer one stops without writing; the job then resumes from its checkpoint', async () => {
  const submitted = await api.request('POST', '/v1/jobs', { ...ids, spec: { ...SMALL_SPEC, seed: 27 } });
  const id = submitted.json.id as string;
  const db = service.db.db;
  let supersede: () => void = () => {};
  const superseded = new Promise<void>((resolve) => {
    supersede = resolve;
  });
  let started = false;
  const streamed = api.events(`/v1/jobs/${id}/events`, (e) => {
    if (e.event !== 'generation' || started) return;
    started = true;
    // What a newer run of the job writes as it starts (BullMQ starting a job again it took for stalled).
    db.job.update({ where: { id }, data: { runToken: 'a-newer-run' } }).then(() => supersede());
  });
  await superseded;
  // The old run stops at its next write; its BullMQ job then completes and goes.
  const connection = redisConnection();
  const queue = new Queue(QUEUES.prune, { connection, prefix: service.prefix });
  try {
    for (let i = 0; (await queue.getJob(id)) && i < 600; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await queue.getJob(id), undefined, 'the superseded run ended');
  } finally {
    await queue.close();
    await connection.quit();
  }
  const row = await db.job.findUniqueOrThrow({ where: { id }, include: { result: true } });
  assert.deepEqual(
    { status: row.status, error: row.error, result: row.result, runToken: row.runToken },
    { status: 'running', error: null, result: null, runToken: 'a-newer-run' },
    'the superseded run wrote no status, error or result',
  );
  // The newer run, here started through the outbox, continues from the checkpoints to an undisturbed result.
  await db.job.update({ where: { id }, data: { status: 'queued', enqueuedAt: null } });
  await assertUndisturbed(service, await finishedReport(api, id), 27);
  await streamed;
});

test('a coordinator taken over while its tasks fail: the new one runs them again, and the job ends undisturbed', async () => {
  const { stack } = service;
  for (const p of stack.processes.filter((w) => w.role === 'worker' && !service.killed.has(w.name))) {
    p.child.kill('SIGTERM');
    assert.equal(await p.exited, 0);
  }
  // A worker with a broken disk: its artifact folder cannot be made, so every task it takes fails.
  const file = join(service.dir, 'not-a-folder');
  writeFileSync(file, '');
  const broken = await stack.addWorker('broken', { EVOP_ARTIFACT_DIR: join(file, 'artifacts') });
  let failures = 0;
  const failedForGood = new Promise<void>((resolve) =>
    broken.child.on('line', (line: string) => {
      if (line.includes('task failed') && ++failures === 3) resolve(); // every attempt spent
    }),
  );
  const firstFailure = new Promise<void>((resolve) =>
    broken.child.on('line', (l: string) => l.includes('task failed') && resolve()),
  );
  const submitted = await api.request('POST', '/v1/jobs', { ...ids, spec: { ...SMALL_SPEC, seed: 29 } });
  const id = submitted.json.id as string;
  await firstFailure; // the coordinator is waiting on a failing task: it dies now

  const coordinator = stack.processes.find((p) => p.role === 'coordinator' && !service.killed.has(p.name))!;
  service.killed.add(coordinator.name);
  coordinator.child.kill('SIGKILL');
  await failedForGood;
  broken.child.kill('SIGTERM');
  assert.equal(await broken.exited, 0);
  await stack.addWorker();
  await stack.addCoordinator('coordinator-taking-over');
  await assertUndisturbed(service, await finishedReport(api, id), 29);
});
