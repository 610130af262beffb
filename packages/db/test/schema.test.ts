import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../src/index.ts';

let t: TestDatabase;
before(async () => {
  t = await createTestDatabase();
});
after(() => t?.drop());

test('the migrations create the schema the client uses: a job with its checkpoints and result', async () => {
  const tenant = await t.db.tenant.create({ data: { name: 'acme' } });
  await t.db.apiKey.create({ data: { tenantId: tenant.id, prefix: 'evop_ab12', hash: 'sha256-of-key' } });
  const model = await t.db.model.create({
    data: {
      tenantId: tenant.id,
      name: 'deep16',
      sha256: 'aa',
      manifestSha256: 'ab',
      files: [{ name: 'model.onnx', sha256: 'ac', bytes: 10 }],
      bytes: 10n,
      tokenizerSha256: 'ad',
      tokenizerName: 'tok512.bin',
      layout: { layers: 16 },
    },
  });
  const dataset = await t.db.dataset.create({
    data: { tenantId: tenant.id, name: 'stories', format: 'text', sha256: 'bb', bytes: 100n, documents: 10 },
  });
  const job = await t.db.job.create({
    data: {
      tenantId: tenant.id,
      modelId: model.id,
      datasetId: dataset.id,
      spec: { strategy: 'evop' },
      idempotencyKey: 'k1',
    },
  });
  assert.equal(job.status, 'queued');
  await t.db.generation.create({
    data: { jobId: job.id, strategy: 'evop', index: 1, record: '{"best":null}', state: '{"rng":[1,2,3,4]}' },
  });
  await t.db.result.create({
    data: { jobId: job.id, mask: '1110', modelManifestSha256: 'cc', report: '{}' },
  });
  const loaded = await t.db.job.findUniqueOrThrow({
    where: { id: job.id },
    include: { generations: true, result: true },
  });
  assert.deepEqual(JSON.parse(loaded.generations[0]!.state), { rng: [1, 2, 3, 4] });
  assert.equal(loaded.result!.mask, '1110');
  // One job per idempotency key and tenant.
  await assert.rejects(
    t.db.job.create({
      data: { tenantId: tenant.id, modelId: model.id, datasetId: dataset.id, spec: {}, idempotencyKey: 'k1' },
    }),
    /Unique constraint/,
  );
  // Deleting a tenant removes what is theirs.
  await t.db.job.deleteMany({ where: { tenantId: tenant.id } });
  await t.db.tenant.delete({ where: { id: tenant.id } });
  assert.equal(await t.db.model.count(), 0);
});
