import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Stack } from '@evop/cli';
import { resolveDataFile } from '@evop/config';
import type { PruneReport } from '@evop/pipeline';
import { QUEUES, redisConnection } from '@evop/queue';
import { Queue } from 'bullmq';
import * as ort from 'onnxruntime-node';
import { ServiceClient } from './service-client.ts';
import {
  assertSameSearch,
  data,
  evopPrune,
  finishedReport,
  type Service,
  SMALL_SPEC,
  startService,
  uploadDeep16,
  uploadModel,
  uploadStories,
  writeSparseExternal,
} from './service-fixture.ts';

const fusedExport = resolveDataFile('onnx-ort-tiny-random-gpt2-fused/past.onnx');
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

// The same job as `evop prune --remove 2 --granularity sublayer --budget 60 … --seed 3 --baselines`.
const spec = { ...SMALL_SPEC, seed: 3, baselines: true };

let service: Service;
let stack: Stack;
let dir: string;
let prefix: string;
let killed: Set<string>;
let api: ServiceClient;
let other: ServiceClient;
let modelId: string;
let datasetId: string;

before(async () => {
  service = await startService(2);
  ({ stack, dir, prefix, killed } = service);
  api = await service.client('acme');
  other = await service.client('other');
});

after(() => service?.close());

test('upload a model and a dataset; bad uploads are refused with problem+json naming the field', async () => {
  const model = await api.upload(
    '/v1/models',
    { name: 'stories260K' },
    { model: [data.model], tokenizer: [data.tokenizer] },
  );
  assert.equal(model.status, 201, JSON.stringify(model.json));
  assert.equal(model.headers.get('location'), `/v1/models/${model.json.id}`);
  assert.equal(model.json.layers, 5);
  modelId = model.json.id;
  const detail = await api.request('GET', `/v1/models/${modelId}`);
  assert.equal(detail.json.units.sublayer.length, 10);
  // A layout stored by an earlier discovery (here: another version, its blocks lost) is found again and kept.
  const stored = (await service.db.db.model.findUniqueOrThrow({ where: { id: modelId } })).layout as {
    version: number;
    blocks: unknown[];
  };
  await service.db.db.model.update({
    where: { id: modelId },
    data: { layout: { ...stored, version: stored.version - 1, blocks: [] } },
  });
  const refreshed = await api.request('GET', `/v1/models/${modelId}`);
  assert.deepEqual(refreshed.json.units, detail.json.units);
  assert.deepEqual((await service.db.db.model.findUniqueOrThrow({ where: { id: modelId } })).layout, stored);

  const dataset = await api.upload('/v1/datasets', { name: 'tinystories' }, { file: [data.stories] });
  assert.equal(dataset.status, 201, JSON.stringify(dataset.json));
  assert.ok(dataset.json.documents > 100);
  datasetId = dataset.json.id;

  const garbage = join(dir, 'garbage.onnx');
  writeFileSync(garbage, randomBytes(4096));
  const bad = await api.upload(
    '/v1/models',
    { name: 'x' },
    { model: [garbage], tokenizer: [data.tokenizer] },
  );
  assert.equal(bad.status, 422);
  assert.match(bad.type, /application\/problem\+json/);
  assert.match(bad.json.detail, /^model: /);
  const fused = await api.upload(
    '/v1/models',
    { name: 'gpt2' },
    { model: [fusedExport], tokenizer: [data.tokenizer] },
  );
  assert.equal(fused.status, 422);
  assert.match(fused.json.detail, /^model: .*fused/i);
  const noTokenizer = await api.upload('/v1/models', { name: 'x' }, { model: [data.model] });
  assert.equal(noTokenizer.status, 422);
  assert.match(noTokenizer.json.detail, /^tokenizer: /);
  assert.equal((await api.request('POST', '/v1/models', { name: 'x' })).status, 415);
  assert.equal(
    (await api.request('GET', '/v1/models')).json.models.length,
    1,
    'nothing of the refused uploads is listed',
  );
  const kinds = new Set((await service.db.db.artifact.findMany()).map((a) => a.kind));
  for (const kind of ['model', 'tokenizer', 'manifest', 'file'])
    assert.ok(kinds.has(kind), `${kind} artifacts recorded`);
});

test('a job runs queued → running → succeeded on two workers and equals `evop prune` with the same spec and seed', async () => {
  const submitted = await api.request(
    'POST',
    '/v1/jobs',
    { modelId, datasetId, spec },
    { 'idempotency-key': 'job-1' },
  );
  assert.equal(submitted.status, 202, JSON.stringify(submitted.json));
  assert.equal(submitted.json.status, 'queued');
  const id = submitted.json.id as string;
  assert.equal(submitted.headers.get('location'), `/v1/jobs/${id}`);
  const again = await api.request(
    'POST',
    '/v1/jobs',
    { modelId, datasetId, spec },
    { 'idempotency-key': 'job-1' },
  );
  assert.equal(again.json.id, id, 'the same Idempotency-Key returns the same job');
  const conflict = await api.request(
    'POST',
    '/v1/jobs',
    { modelId, datasetId, spec: { ...spec, seed: 4 } },
    { 'idempotency-key': 'job-1' },
  );
  assert.equal(conflict.status, 409);

  const statuses = new Set<string>();
  const events = await api.events(`/v1/jobs/${id}/events`, (e) => {
    if (e.event === 'status') statuses.add((e.data as { status: string }).status);
  });
  const job = await api.waitFor(id, (j) => j.status !== 'running' && j.status !== 'queued');
  assert.equal(job.status, 'succeeded', String(job.error));
  assert.ok(statuses.has('running') && statuses.has('succeeded'), [...statuses].join(', '));

  const report = (await api.request('GET', `/v1/jobs/${id}/report.json`)).json as PruneReport;
  const generations = (await api.request('GET', `/v1/jobs/${id}/generations`)).json.generations;
  const generationEvents = events.filter((e) => e.event === 'generation');
  assert.equal(generationEvents.length, generations.length, 'one SSE event per generation');
  assert.equal(new Set(generationEvents.map((e) => e.id)).size, generationEvents.length);
  assert.equal(
    generations.length,
    report.searches.reduce((n, s) => n + s.history.length, 0),
  );

  // The same run in one process.
  const out = join(dir, 'local');
  const local = await evopPrune(out, ['--seed', '3', '--baselines']);
  assert.equal(report.result.mask, local.result.mask);
  assert.deepEqual(report.calibration, local.calibration);
  assert.deepEqual(report.influence, local.influence);
  assert.deepEqual(
    report.searches.map((s) => [s.strategy, s.best, s.history]),
    local.searches.map((s) => [s.strategy, s.best, s.history]),
  );
  assert.deepEqual(
    report.table.map((r) => [r.method, r.mask, r.perplexity, r.evaluations, r.params]),
    local.table.map((r) => [r.method, r.mask, r.perplexity, r.evaluations, r.params]),
  );

  // The download is the file `evop prune` writes, and it runs in plain onnxruntime.
  const download = await fetch(
    `${stack.apiUrl}${job.result && (job.result as { links: { model: string } }).links.model}`,
    {
      headers: { authorization: `Bearer ${api.key}` },
    },
  );
  assert.equal(download.status, 200);
  const bytes = new Uint8Array(await download.arrayBuffer());
  assert.equal(sha256(bytes), sha256(readFileSync(join(out, 'model.onnx'))));
  const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
  assert.ok(session.inputNames.includes('input_ids'));
  const html = await fetch(`${stack.apiUrl}/v1/jobs/${id}/report.html`, {
    headers: { authorization: `Bearer ${api.key}` },
  });
  assert.match(await html.text(), /new Chart\(/);

  const workers = (await api.request('GET', '/v1/workers')).json.workers as {
    tasks: Record<string, number>;
  }[];
  assert.equal(workers.length, 2);
  assert.ok(
    workers.every((w) => (w.tasks.fitness ?? 0) > 0),
    'both workers evaluated masks',
  );
});

test('a Hugging Face export (Phi: parallel attention + MLP, KV cache) prunes through the service as `evop prune` does', async () => {
  const zoo = (file: string) => resolveDataFile(`hf-zoo/${file}`);
  // tokenizer_config.json beside tokenizer.json says BOS is added, as `evop prune` reads it from the folder.
  const tokenizer = [zoo('tokenizer.json'), zoo('tokenizer_config.json')];
  const phi = await uploadModel(api, 'phi', zoo('phi/model.ts-past.onnx'), tokenizer);
  const model = (await api.request('GET', `/v1/models/${phi}`)).json as { units: { sublayer: string[] } };
  assert.equal(model.units.sublayer.length, 12, 'attention and MLP of each parallel layer are units');
  const phiSpec = { ...SMALL_SPEC, target: { units: 3 }, seed: 5 };
  const submitted = await api.request('POST', '/v1/jobs', { modelId: phi, datasetId, spec: phiSpec });
  assert.equal(submitted.status, 202, JSON.stringify(submitted.json));
  const report = await finishedReport(api, submitted.json.id as string);
  const local = await evopPrune(
    join(dir, 'local-phi'),
    ['--seed', '5'],
    { model: zoo('phi/model.ts-past.onnx'), tokenizer },
    3,
  );
  assertSameSearch(report, local);
  assert.deepEqual(
    report.table.map((r) => r.perplexity),
    local.table.map((r) => r.perplexity),
  );
  assert.equal(report.protocol.bos, true);
  assert.deepEqual(report.failed, []);
  assert.ok(report.latency?.decode, 'decode timed through the KV cache');
});

test('a model whose external data is over 2 GiB goes through upload, a job and download, as `evop prune` prunes it', async () => {
  // stories260K with its weights in model.onnx.data after a 2.2 GiB hole: a sparse file, fast to make, that no
  // process can read whole (Node refuses files over 2 GiB), so every step must stream it.
  const source = join(dir, 'sparse');
  const path = writeSparseExternal(data.model, source, 2.2 * 2 ** 30);
  assert.ok(statSync(`${path}.data`).size > 2 ** 31);
  const sparseId = await uploadModel(api, 'sparse', path, [data.tokenizer]);
  const datasetId = await uploadStories(api);
  const submitted = await api.request('POST', '/v1/jobs', {
    modelId: sparseId,
    datasetId,
    spec: { ...spec, baselines: false },
  });
  assert.equal(submitted.status, 202, JSON.stringify(submitted.json));
  const report = await finishedReport(api, submitted.json.id as string);
  const local = await evopPrune(join(dir, 'local-sparse'), ['--seed', '3'], {
    model: path,
    tokenizer: [data.tokenizer],
  });
  assertSameSearch(report, local);
  // The pruned model keeps only its own tensors: model.onnx and a compact model.onnx.data, as evop prune wrote.
  for (const file of ['model.onnx', 'model.onnx.data']) {
    const download = await fetch(`${stack.apiUrl}/v1/jobs/${submitted.json.id}/artifacts/${file}`, {
      headers: { authorization: `Bearer ${api.key}` },
    });
    assert.equal(download.status, 200, file);
    const bytes = new Uint8Array(await download.arrayBuffer());
    assert.equal(sha256(bytes), sha256(readFileSync(join(dir, 'local-sparse', file))), file);
  }
  assert.ok(statSync(join(dir, 'local-sparse', 'model.onnx.data')).size < 2 ** 24, 'the hole is not copied');
});

test('a second identical job is served from the fitness cache', async () => {
  const submitted = await api.request('POST', '/v1/jobs', { modelId, datasetId, spec });
  const job = await api.waitFor(submitted.json.id, (j) => j.status !== 'running' && j.status !== 'queued');
  assert.equal(job.status, 'succeeded', String(job.error));
  const report = (await api.request('GET', `/v1/jobs/${submitted.json.id}/report.json`)).json as PruneReport;
  const last = report.searches.map((s) => s.history.at(-1)!);
  const hits = last.reduce((n, r) => n + r.cacheHits, 0);
  const evaluations = last.reduce((n, r) => n + r.evaluations, 0);
  process.stdout.write(`# second job: ${hits} of ${evaluations} evaluations from the fitness cache\n`);
  assert.equal(hits, evaluations, 'every mask was measured by the first job');
});

test('a job whose coordinator is killed is finished by another, with the history of an uninterrupted run', async () => {
  const resumedSpec = { ...spec, seed: 11, baselines: false };
  const submitted = await api.request('POST', '/v1/jobs', { modelId, datasetId, spec: resumedSpec });
  const id = submitted.json.id as string;
  let taken: Promise<unknown> | undefined;
  const streamed = api.events(`/v1/jobs/${id}/events`, (e) => {
    if (e.event !== 'generation' || taken) return;
    const coordinator = stack.processes.find((p) => p.role === 'coordinator' && !killed.has(p.name))!;
    killed.add(coordinator.name);
    coordinator.child.kill('SIGKILL');
    taken = coordinator.exited.then(() => stack.addCoordinator('coordinator-2'));
  });
  const job = await api.waitFor(id, (j) => j.status === 'succeeded' || j.status === 'failed', 300_000);
  await taken;
  await streamed;
  assert.equal(job.status, 'succeeded', String(job.error));
  const report = (await api.request('GET', `/v1/jobs/${id}/report.json`)).json as PruneReport;
  const local = await evopPrune(join(dir, 'local-11'), ['--seed', '11']);
  assert.equal(report.result.mask, local.result.mask);
  assert.deepEqual(
    report.searches[0]!.history,
    local.searches[0]!.history,
    'nothing lost, nothing counted twice',
  );
});

test('cancel stops a running job within one generation and removes its waiting tasks', async () => {
  const long = { target: { units: 6 }, budget: 100_000, calibration: 8, heldOut: 8, seqLen: 64, seed: 1 };
  const submitted = await api.request('POST', '/v1/jobs', {
    modelId: await uploadDeep16(service, api),
    datasetId,
    spec: long,
  });
  const id = submitted.json.id as string;
  let atCancel = -1;
  const cancelled = api.events(`/v1/jobs/${id}/events`, (e) => {
    if (e.event !== 'generation' || atCancel >= 0) return;
    atCancel = 0; // the first generation has been checkpointed: cancel now
    api.request('POST', `/v1/jobs/${id}/cancel`).then(async (r) => {
      assert.equal(r.status, 202);
      atCancel = (await api.request('GET', `/v1/jobs/${id}/generations`)).json.generations.length;
    });
  });
  const events = await cancelled;
  const job = await api.waitFor(
    id,
    (j) => j.status === 'cancelled' || j.status === 'failed' || j.status === 'succeeded',
  );
  assert.equal(job.status, 'cancelled');
  assert.equal((events.at(-1)!.data as { status: string }).status, 'cancelled');
  const after = (await api.request('GET', `/v1/jobs/${id}/generations`)).json.generations.length;
  assert.ok(after <= atCancel + 1, `${after} generations after cancelling at ${atCancel}`);
  const fitness = new Queue(QUEUES.fitness, { connection: redisConnection(), prefix });
  const waiting = (await fitness.getWaiting()).filter((j) => j.data.jobId === id);
  await fitness.close();
  await (await fitness.client).quit();
  assert.equal(waiting.length, 0, 'no task of the cancelled job is left waiting');
  assert.equal((await api.request('POST', `/v1/jobs/${id}/cancel`)).status, 409);
});

test('bad job input is answered 4xx problem+json naming the field; keys and tenants are enforced', async () => {
  const cases: [unknown, number, RegExp][] = [
    [{ modelId, datasetId, spec: { ...spec, target: { units: 0 } } }, 400, /^spec\.target/],
    [{ modelId, datasetId, spec: { ...spec, budget: 'many' } }, 400, /^spec\.budget/],
    [{ modelId, datasetId, spec: { ...spec, strategy: 'magic' } }, 400, /^spec\.strategy/],
    [{ modelId, datasetId, spec: { ...spec, target: { units: 10 } } }, 422, /^spec\.target/],
    [{ modelId: '00000000-0000-4000-8000-000000000000', datasetId, spec }, 422, /^modelId/],
    [{ datasetId, spec }, 400, /^modelId/],
  ];
  for (const [body, status, detail] of cases) {
    const r = await api.request('POST', '/v1/jobs', body);
    assert.equal(r.status, status, JSON.stringify(r.json));
    assert.match(r.type, /application\/problem\+json/);
    assert.match(r.json.detail, detail);
  }
  const jobs = (await api.request('GET', '/v1/jobs')).json.jobs as { id: string }[];
  const unauthenticated = await fetch(`${stack.apiUrl}/v1/jobs`);
  assert.equal(unauthenticated.status, 401);
  assert.equal((await new ServiceClient(stack.apiUrl, 'evop_wrong').request('GET', '/v1/jobs')).status, 401);
  assert.equal(
    (await other.request('GET', `/v1/jobs/${jobs[0]!.id}`)).status,
    404,
    "another tenant's job is not found",
  );
  assert.equal((await other.request('GET', `/v1/models/${modelId}`)).status, 404);
  assert.equal((await other.request('GET', '/v1/jobs')).json.jobs.length, 0);
  assert.equal((await fetch(`${stack.apiUrl}/internal/artifacts/${'0'.repeat(64)}`)).status, 401);
  assert.equal((await fetch(`${stack.apiUrl}/healthz`)).status, 200);
  assert.equal((await fetch(`${stack.apiUrl}/readyz`)).status, 200);
  const succeeded = (await api.request('GET', '/v1/jobs?status=succeeded')).json.jobs.length;
  assert.ok(succeeded >= 3);
  // Metrics count every tenant's jobs: only the operator (the service token) reads them.
  assert.equal((await fetch(`${stack.apiUrl}/metrics`)).status, 401);
  assert.equal((await api.request('GET', '/metrics')).status, 401, 'an API key is not enough');
  const metrics = await fetch(`${stack.apiUrl}/metrics`, {
    headers: { authorization: `Bearer ${stack.serviceToken}` },
  });
  assert.ok((await metrics.text()).includes(`evop_jobs{status="succeeded"} ${succeeded}`));
  // Workers are shared, the models they hold are not: another tenant sees none of ours.
  const seen = (client: ServiceClient) =>
    client
      .request('GET', '/v1/workers')
      .then((r) => (r.json.workers as { models: string[] }[]).flatMap((w) => w.models));
  assert.ok((await seen(api)).length > 0, 'the owner sees its loaded models');
  assert.deepEqual(await seen(other), []);
  const openapi = (await (await fetch(`${stack.apiUrl}/docs/json`)).json()) as {
    paths: Record<string, Record<string, unknown>>;
  };
  assert.ok(openapi.paths['/v1/jobs']?.post, 'the OpenAPI document describes the routes');
});
