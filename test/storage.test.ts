import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { serializeManifest } from '@evop/data';
import type { ServiceClient } from './service-client.ts';
import { data, type Service, SMALL_SPEC, startService, uploadModel } from './service-fixture.ts';

// Room for the model and the dataset, not for a second dataset.
const QUOTA = statSync(data.model).size + statSync(data.stories).size + 100_000;
let service: Service;
let api: ServiceClient;
let apiDir: string;

before(async () => {
  service = await startService(0, { EVOP_TENANT_MAX_BYTES: String(QUOTA), EVOP_GC_GRACE_MS: '0' });
  api = await service.client('acme');
  apiDir = join(service.dir, 'stack', 'api');
});
after(() => service?.close());

/** Every file under the API's artifact store, or its staging area. */
function storedFiles(area: 'artifacts' | 'staging' = 'artifacts'): string[] {
  const walk = (dir: string): string[] => {
    try {
      return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
      );
    } catch {
      return [];
    }
  };
  return walk(join(apiDir, area)).sort();
}

const artifactRows = async () => (await service.db.db.artifact.findMany()).map((r) => r.sha256).sort();

/** Waits until the store holds exactly `expected` (garbage collection runs after each deletion). */
async function storeBecomes(expected: string[], timeoutMs = 30_000) {
  const end = Date.now() + timeoutMs;
  while (!isDeepStrictEqual(storedFiles(), expected)) {
    if (Date.now() > end) assert.deepEqual(storedFiles(), expected, `the store within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('a refused upload leaves nothing in the store: not a model, a stray data file, a corpus without text', async () => {
  const before = storedFiles();
  const rows = await artifactRows();
  const junk = join(service.dir, 'junk.onnx');
  writeFileSync(junk, randomBytes(50_000));
  const notModel = await api.upload(
    '/v1/models',
    { name: 'junk' },
    { model: [junk], tokenizer: [data.tokenizer] },
  );
  assert.equal(notModel.status, 422);
  assert.match(notModel.json.detail, /^model: not a readable ONNX model/);

  const stray = join(service.dir, 'weights.bin');
  writeFileSync(stray, randomBytes(10_000));
  const extra = await api.upload(
    '/v1/models',
    { name: 'extra' },
    { model: [data.model], data: [stray], tokenizer: [data.tokenizer] },
  );
  assert.equal(extra.status, 422);
  assert.equal(extra.json.detail, "data: 'weights.bin' is not external data of the model");

  const blank = join(service.dir, 'blank.txt');
  writeFileSync(blank, '\n\n  \n');
  const empty = await api.upload('/v1/datasets', { name: 'blank' }, { file: [blank] });
  assert.equal(empty.status, 422);
  assert.match(empty.json.detail, /^file: corpus 'blank.txt' has no text/);

  assert.deepEqual(storedFiles(), before, 'no file of a refused upload is kept');
  assert.deepEqual(storedFiles('staging'), [], 'nor left staged');
  assert.deepEqual(await artifactRows(), rows);
});

test("a tenant's storage quota refuses an upload past it (413 naming the quota); other tenants are not counted", async () => {
  const modelId = await uploadModel(api, 'stories260K', data.model);
  const first = await api.upload('/v1/datasets', { name: 'stories' }, { file: [data.stories] });
  assert.equal(first.status, 201, JSON.stringify(first.json));
  const second = await api.upload('/v1/datasets', { name: 'again' }, { file: [data.stories] });
  assert.equal(second.status, 413);
  assert.match(
    second.json.detail,
    /^file: the tenant's storage quota of \d+ bytes \(EVOP_TENANT_MAX_BYTES\) has \d+ bytes left/,
  );
  const other = await service.client('globex');
  const theirs = await other.upload('/v1/datasets', { name: 'stories' }, { file: [data.stories] });
  assert.equal(theirs.status, 201);
  // Room comes back with a deletion.
  assert.equal((await api.request('DELETE', `/v1/datasets/${first.json.id}`)).status, 204);
  const third = await api.upload('/v1/datasets', { name: 'again' }, { file: [data.stories] });
  assert.equal(third.status, 201, JSON.stringify(third.json));
  assert.equal((await api.request('DELETE', `/v1/datasets/${third.json.id}`)).status, 204);
  assert.equal((await api.request('DELETE', `/v1/models/${modelId}`)).status, 204);
  assert.equal((await other.request('DELETE', `/v1/datasets/${theirs.json.id}`)).status, 204);
});

test('DELETE is refused while a job uses a model or dataset, and a running job; once deleted, the store shrinks back except for what others still use', async () => {
  const other = await service.client('initech');
  const theirModel = await uploadModel(other, 'shared-weights', data.model);

  const modelId = await uploadModel(api, 'stories260K', data.model);
  const dataset = await api.upload('/v1/datasets', { name: 'stories' }, { file: [data.stories] });
  const datasetId = dataset.json.id as string;
  // No worker: the job stays unfinished until cancelled.
  const job = await api.request('POST', '/v1/jobs', { modelId, datasetId, spec: SMALL_SPEC });
  assert.equal(job.status, 202, JSON.stringify(job.json));
  const jobId = job.json.id as string;

  for (const path of [`/v1/models/${modelId}`, `/v1/datasets/${datasetId}`]) {
    const refused = await api.request('DELETE', path);
    assert.equal(refused.status, 409);
    assert.match(refused.json.detail, /is used by 1 job \(1 unfinished\); delete those jobs first/);
  }
  const running = await api.request('DELETE', `/v1/jobs/${jobId}`);
  assert.equal(running.status, 409);
  assert.match(running.json.detail, /is (queued|running); cancel it first/);
  assert.equal(
    (await other.request('DELETE', `/v1/jobs/${jobId}`)).status,
    404,
    "another tenant's job is unknown",
  );
  assert.equal((await other.request('DELETE', `/v1/models/${modelId}`)).status, 404);

  assert.equal((await api.request('POST', `/v1/jobs/${jobId}/cancel`)).status, 202);
  await api.waitFor(jobId, (j) => j.status === 'cancelled', 60_000);
  assert.equal((await api.request('DELETE', `/v1/jobs/${jobId}`)).status, 204);
  assert.equal((await api.request('GET', `/v1/jobs/${jobId}`)).status, 404);
  assert.equal((await api.request('DELETE', `/v1/models/${modelId}`)).status, 204);
  assert.equal((await api.request('DELETE', `/v1/datasets/${datasetId}`)).status, 204);
  assert.equal((await api.request('GET', `/v1/models/${modelId}`)).status, 404);

  // The same weights are still another tenant's model: collected are only the files nobody names.
  const theirs = await service.db.db.model.findUniqueOrThrow({ where: { id: theirModel } });
  await storeBecomes(
    [
      theirs.manifestSha256,
      theirs.tokenizerSha256,
      ...(theirs.files as { sha256: string }[]).map((f) => f.sha256),
    ]
      .map((sha) => join(apiDir, 'artifacts', sha.slice(0, 2), sha))
      .sort(),
  );
  assert.equal((await other.request('GET', `/v1/models/${theirModel}`)).status, 200);
  assert.equal((await other.request('DELETE', `/v1/models/${theirModel}`)).status, 204);
  // No tenant holds anything now (the tests before deleted what they made): the store is empty.
  await storeBecomes([]);
  assert.deepEqual(storedFiles('staging'), []);
});

test("a finished job's models, its front's too, are kept by the collection until the job is deleted", async () => {
  const modelId = await uploadModel(api, 'stories260K', data.model);
  const dataset = await api.upload('/v1/datasets', { name: 'stories' }, { file: [data.stories] });
  const job = await api.request('POST', '/v1/jobs', {
    modelId,
    datasetId: dataset.json.id,
    spec: { ...SMALL_SPEC, front: [{ units: 1 }] },
  });
  assert.equal(job.status, 202, JSON.stringify(job.json));
  const jobId = job.json.id as string;
  // Stopped first, so that the coordinator stores nothing of its own for it while the test stores its result.
  assert.equal((await api.request('POST', `/v1/jobs/${jobId}/cancel`)).status, 202);
  await api.waitFor(jobId, (j) => j.status === 'cancelled', 60_000);
  // A result as a worker leaves it (no worker runs here): each model's file and manifest, stored as workers store them.
  const put = async (bytes: Buffer) => {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const r = await fetch(`${service.stack.apiUrl}/internal/artifacts/${sha256}`, {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${service.stack.serviceToken}`,
        'content-type': 'application/octet-stream',
      },
      body: bytes,
    });
    assert.equal(r.status, 201);
    return sha256;
  };
  const model = async () => {
    const bytes = randomBytes(2048);
    const file = await put(bytes);
    return {
      file,
      manifest: await put(
        Buffer.from(
          serializeManifest({ files: [{ name: 'model.onnx', sha256: file, bytes: bytes.length }] }),
        ),
      ),
    };
  };
  const target = await model();
  const point = await model();
  await service.db.db.$transaction([
    service.db.db.job.update({ where: { id: jobId }, data: { status: 'succeeded', finishedAt: new Date() } }),
    service.db.db.result.create({
      data: {
        jobId,
        mask: '1110111011',
        modelManifestSha256: target.manifest,
        report: JSON.stringify({
          protocol: { datasets: [] },
          table: [],
          latency: null,
          result: { pruned: ['attn1', 'attn3'], consistency: 0 },
        }),
        points: [{ units: 1, mask: '1111111011', modelManifestSha256: point.manifest }],
      },
    }),
  ]);
  const stored = (sha256: string) => join(apiDir, 'artifacts', sha256.slice(0, 2), sha256);
  const results = [target.file, target.manifest, point.file, point.manifest].map(stored);
  // A collection (each deletion runs one) removes a file nobody names, and keeps every file of both models.
  const unnamed = stored(await put(randomBytes(1024)));
  const spare = await api.request('POST', '/v1/jobs', {
    modelId,
    datasetId: dataset.json.id,
    spec: SMALL_SPEC,
  });
  assert.equal((await api.request('POST', `/v1/jobs/${spare.json.id}/cancel`)).status, 202);
  await api.waitFor(spare.json.id, (j) => j.status === 'cancelled', 60_000);
  assert.equal((await api.request('DELETE', `/v1/jobs/${spare.json.id}`)).status, 204);
  for (let end = Date.now() + 30_000; storedFiles().includes(unnamed); )
    if (Date.now() > end) assert.fail('the collection did not run within 30 s');
    else await new Promise((r) => setTimeout(r, 200));
  for (const path of results) assert.ok(storedFiles().includes(path), path);
  const download = await api.request('GET', `/v1/jobs/${jobId}/front/1/artifacts/model.onnx`);
  assert.equal(download.status, 200);
  // Once the job is deleted, nothing names its models: they go with it.
  assert.equal((await api.request('DELETE', `/v1/jobs/${jobId}`)).status, 204);
  assert.equal((await api.request('DELETE', `/v1/models/${modelId}`)).status, 204);
  assert.equal((await api.request('DELETE', `/v1/datasets/${dataset.json.id}`)).status, 204);
  // (Only the result's files are looked at: a job's coordinator may still store windows of its own meanwhile.)
  for (let end = Date.now() + 30_000; results.some((path) => storedFiles().includes(path)); )
    if (Date.now() > end) assert.fail('the result files outlived their job by 30 s');
    else await new Promise((r) => setTimeout(r, 200));
});
