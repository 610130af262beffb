import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { QUEUES, redisConnection } from '@evop/queue';
import { QueueEvents } from 'bullmq';
import type { ServiceClient } from './service-client.ts';
import {
  data,
  finishedReport,
  type Service,
  SMALL_SPEC,
  startService,
  uploadFixtures,
} from './service-fixture.ts';

// A pool of 432 windows of 512 tokens drawn from a 30 MB document (its whole text, tokenized on the event loop
// as before, took minutes; the coordinator's lock is 3 s here), with a search as cheap as SMALL_SPEC's: few
// calibration windows, many held-out ones (evaluated twice, at the end).
const HEAVY_SPEC = { ...SMALL_SPEC, seqLen: 512, calibration: 8, heldOut: 400 };

let service: Service;
let api: ServiceClient;
let ids: { modelId: string; datasetId: string };
let oneDocument: string;
const activations = new Map<string, number>();
let stalls = 0;
let events: QueueEvents;

before(async () => {
  service = await startService(1);
  api = await service.client('tenant');
  ids = await uploadFixtures(api);
  // A 30 MB corpus that is one document: the sample's stories with no blank line between them.
  const stories = readFileSync(data.stories, 'utf8').replaceAll(/\n[ \t]*\n/g, '\n');
  const file = join(service.dir, 'one-document.txt');
  writeFileSync(file, stories.repeat(Math.ceil(30e6 / stories.length)));
  const upload = await api.upload('/v1/datasets', { name: 'one document' }, { file: [file] });
  assert.equal(upload.status, 201, JSON.stringify(upload.json));
  oneDocument = upload.json.id as string;
  events = new QueueEvents(QUEUES.prune, { connection: redisConnection(), prefix: service.prefix });
  events.on('active', ({ jobId }) => activations.set(jobId, (activations.get(jobId) ?? 0) + 1));
  events.on('stalled', () => stalls++);
  await events.waitUntilReady();
});

after(async () => {
  await events.close();
  await service.close();
});

const submit = async (datasetId: string, spec: object) => {
  const submitted = await api.request('POST', '/v1/jobs', { modelId: ids.modelId, datasetId, spec });
  assert.equal(submitted.status, 202, JSON.stringify(submitted.json));
  return submitted.json.id as string;
};

test('a huge one-document corpus is tokenized off the event loop: its job keeps its lock and runs once, and another job progresses meanwhile', async () => {
  const heavy = await submit(oneDocument, { ...HEAVY_SPEC, seed: 41 });
  const small = await submit(ids.datasetId, { ...SMALL_SPEC, seed: 42 });
  const [heavyReport] = await Promise.all([finishedReport(api, heavy, 600_000), finishedReport(api, small)]);
  assert.equal(
    (heavyReport.protocol.windows as { pool: number }).pool,
    4 * HEAVY_SPEC.calibration + HEAVY_SPEC.heldOut,
  );
  assert.equal(stalls, 0, 'BullMQ never took a job for stalled');
  assert.equal(activations.get(heavy), 1, 'the heavy job ran once');
  assert.equal(activations.get(small), 1, 'the small job ran once');
  const rows = await service.db.db.job.findMany({ where: { id: { in: [heavy, small] } } });
  const heavyRow = rows.find((r) => r.id === heavy)!;
  const smallRow = rows.find((r) => r.id === small)!;
  assert.ok(smallRow.finishedAt! < heavyRow.finishedAt!, 'the small job ended while the heavy one ran');
});
