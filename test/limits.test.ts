import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { resolveDataFile } from '@evop/config';
import { discoverLayers, readModel } from '@evop/onnx';
import { taskMemoryBytes } from '@evop/pipeline';
import type { ServiceClient } from './service-client.ts';
import {
  assertProblem,
  data,
  type Service,
  startService,
  uploadFixtures,
  uploadModel,
} from './service-fixture.ts';

// The service's limits, small enough to reach in a test; each test below is at one of them and just past it.
const LIMITS = {
  EVOP_MAX_SEQ_LEN: '8192',
  EVOP_MAX_WINDOWS: '24',
  EVOP_MAX_CLUSTERS: '4',
  EVOP_MAX_BUDGET: '200',
  EVOP_MAX_TASK_LIMIT: '50',
  EVOP_TENANT_MAX_ACTIVE_JOBS: '2',
  EVOP_MASKS_PER_TASK: '8',
  EVOP_MAX_BATCH_TOKENS: '4096',
};
/** The spec at every spec maximum (calibration 16 + heldOut 8 = 24 windows); 64 tokens, so it fits any model. */
const AT_LIMITS = {
  target: { units: 2 },
  granularity: 'sublayer',
  budget: 200,
  calibration: 16,
  heldOut: 8,
  clusters: 4,
  seqLen: 64,
  tasks: ['arc-easy'],
  taskLimit: 50,
};
/** stories260K's task memory at 4096 tokens is the worker memory limit: 4096 fits, 4097 does not. */
const MEMORY_SPEC = { ...AT_LIMITS, calibration: 8, heldOut: 8 };
const memoryAt = (seqLen: number) =>
  taskMemoryBytes(
    discoverLayers(readModel(data.model).proto),
    { ...MEMORY_SPEC, seqLen },
    // The stack's runtime settings (RUNTIME: one evaluator thread) and LIMITS'.
    { masksPerTask: 8, runtime: { maxBatchTokens: 4096, evalThreads: 1 } },
  );

let service: Service;
let ids: { modelId: string; datasetId: string };
let gpt2: string;

before(async () => {
  service = await startService(0, {
    ...LIMITS,
    EVOP_WORKER_MEMORY_BYTES: String(Math.ceil(memoryAt(4096))),
  });
  const api = await service.client('uploads');
  ids = await uploadFixtures(api);
  const zoo = (file: string) => resolveDataFile(`hf-zoo/${file}`);
  gpt2 = await uploadModel(api, 'gpt2', zoo('gpt2/model.ts.onnx'), [
    zoo('tokenizer.json'),
    zoo('tokenizer_config.json'),
  ]);
});
after(() => service?.close());

/** A client of the uploading tenant with a fresh key (each stays under its rate limit). */
const client = () => service.client('uploads');

/** Submits `spec` on the model (stories260K unless given); the response. */
const submit = (
  api: ServiceClient,
  spec: object,
  modelId = ids.modelId,
  headers: Record<string, string> = {},
) => api.request('POST', '/v1/jobs', { modelId, datasetId: ids.datasetId, spec }, headers);

/** Marks every job finished, as when jobs end: they leave their tenant's quota, and the next test starts with none. */
async function finishAll() {
  await service.db.db.job.updateMany({
    where: { status: { in: ['queued', 'running'] } },
    data: { status: 'cancelled', finishedAt: new Date() },
  });
}

test('each spec maximum of the service: past it 422 naming the field and the variable; at it accepted', async () => {
  const api = await client();
  const cases: [object, RegExp][] = [
    [{ seqLen: 8193 }, /^spec\.seqLen: at most 8192 on this service \(EVOP_MAX_SEQ_LEN\)$/],
    [
      { calibration: 17 },
      /^spec\.calibration: calibration 17 \+ heldOut 8 = 25 windows, at most 24 .*EVOP_MAX_WINDOWS/,
    ],
    [{ calibration: 4, heldOut: 21 }, /^spec\.heldOut: calibration 4 \+ heldOut 21 = 25 windows, at most 24/],
    [{ clusters: 5 }, /^spec\.clusters: at most 4 on this service \(EVOP_MAX_CLUSTERS\)$/],
    [{ budget: 201 }, /^spec\.budget: at most 200 on this service \(EVOP_MAX_BUDGET\)$/],
    [{ taskLimit: 51 }, /^spec\.taskLimit: at most 50 on this service \(EVOP_MAX_TASK_LIMIT\)$/],
  ];
  for (const [fields, detail] of cases)
    assertProblem(await submit(api, { ...AT_LIMITS, ...fields }), 422, detail);
  // The schema's own bounds hold everywhere: absurd values are refused before any service maximum.
  for (const field of ['seqLen', 'calibration', 'heldOut', 'clusters', 'budget', 'taskLimit'])
    assertProblem(
      await submit(api, { ...AT_LIMITS, [field]: 2 ** 53 - 1 }),
      400,
      new RegExp(`^spec\\.${field}: Too big`),
    );
  assert.equal((await service.db.db.job.count()) as number, 0, 'no job was made');
  const accepted = await submit(api, AT_LIMITS);
  assert.equal(accepted.status, 202, JSON.stringify(accepted.json));
  await finishAll();
});

test("seqLen within the model's context where its graph fixes one (GPT-2's position table); else the service's maximum", async () => {
  const api = await client();
  assertProblem(
    await submit(api, { ...AT_LIMITS, seqLen: 257 }, gpt2),
    422,
    /^spec\.seqLen: 257 tokens, but the model's context is 256 positions/,
  );
  const atContext = await submit(api, { ...AT_LIMITS, seqLen: 256 }, gpt2);
  assert.equal(atContext.status, 202, JSON.stringify(atContext.json));
  assert.equal((await api.request('GET', `/v1/models/${gpt2}`)).json.context, 256);
  // stories260K computes its rotary angles: its graph fixes no context, only EVOP_MAX_SEQ_LEN applies (see above).
  assert.equal((await api.request('GET', `/v1/models/${ids.modelId}`)).json.context, null);
  const rotary = await submit(api, { ...AT_LIMITS, seqLen: 257 });
  assert.equal(rotary.status, 202, JSON.stringify(rotary.json));
  await finishAll();
});

test('a task whose estimated memory exceeds EVOP_WORKER_MEMORY_BYTES is refused naming seqLen; one that fits is accepted', async () => {
  const api = await client();
  assertProblem(
    await submit(api, { ...MEMORY_SPEC, seqLen: 4097 }),
    422,
    /^spec\.seqLen: a task would need ~\d+\.\d GiB of worker memory \(limit \d+\.\d GiB, EVOP_WORKER_MEMORY_BYTES\)$/,
  );
  const fits = await submit(api, { ...MEMORY_SPEC, seqLen: 4096 });
  assert.equal(fits.status, 202, JSON.stringify(fits.json));
  await finishAll();
});

test('a tenant with EVOP_TENANT_MAX_ACTIVE_JOBS jobs queued or running gets 429; a retry of one of them is still answered', async () => {
  const api = await client();
  const key = (i: number) => ({ 'idempotency-key': `quota-${i}` });
  const first = await submit(api, { ...AT_LIMITS, seed: 1 }, ids.modelId, key(1));
  const second = await submit(api, { ...AT_LIMITS, seed: 2 }, ids.modelId, key(2));
  assert.deepEqual([first.status, second.status], [202, 202]);
  const third = await submit(api, { ...AT_LIMITS, seed: 3 }, ids.modelId, key(3));
  assertProblem(
    third,
    429,
    /^EVOP_TENANT_MAX_ACTIVE_JOBS: this tenant has 2 jobs queued or running, at most 2/,
  );
  const retry = await submit(api, { ...AT_LIMITS, seed: 1 }, ids.modelId, key(1));
  assert.equal(retry.status, 202, JSON.stringify(retry.json));
  assert.equal(retry.json.id, first.json.id);
  // Another tenant has a quota of its own.
  const other = await service.client('other');
  const theirs = await uploadFixtures(other);
  const otherJob = await other.request('POST', '/v1/jobs', { ...theirs, spec: AT_LIMITS });
  assert.equal(otherJob.status, 202, JSON.stringify(otherJob.json));
  await finishAll();
  // Concurrent submissions are counted one at a time: exactly the quota is taken.
  const burst = await Promise.all([4, 5, 6, 7, 8].map((seed) => submit(api, { ...AT_LIMITS, seed })));
  assert.deepEqual(
    burst.map((r) => r.status).sort(),
    [202, 202, 429, 429, 429],
    JSON.stringify(burst.map((r) => r.json)),
  );
  await finishAll();
  // The same submission sent 6 times at once: one job, every answer names it.
  const same = await Promise.all(
    Array.from({ length: 6 }, () => submit(api, { ...AT_LIMITS, seed: 9 }, ids.modelId, key(9))),
  );
  assert.deepEqual(
    new Set(same.map((r) => `${r.status} ${r.json.id}`)).size,
    1,
    JSON.stringify(same.map((r) => r.json)),
  );
  assert.equal(same[0]!.status, 202);
  assert.equal(await service.db.db.job.count({ where: { idempotencyKey: 'quota-9' } }), 1);
  await finishAll();
});
