import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { resolveDataFile } from '@evop/config';
import fc from 'fast-check';
import type { ServiceClient } from './service-client.ts';
import { assertProblem, data, type Service, startService, uploadFixtures } from './service-fixture.ts';

const MAX_UPLOAD = 4 * 1024 * 1024;
let service: Service;
let api: ServiceClient;
let ids: { modelId: string; datasetId: string };

before(async () => {
  service = await startService(0, { EVOP_MAX_UPLOAD_BYTES: String(MAX_UPLOAD), EVOP_RATE_LIMIT: '100' });
  api = await service.client('acme');
  ids = await uploadFixtures(api);
});
after(() => service?.close());

const valid = {
  target: { units: 2 },
  granularity: 'sublayer',
  budget: 60,
  calibration: 8,
  heldOut: 8,
  seqLen: 64,
  seed: 3,
};
const SPEC_FIELDS = [
  ...Object.keys(valid),
  'strategy',
  'objective',
  'clusters',
  'sampling',
  'tasks',
  'taskLimit',
  'baselines',
  'front',
];
const junk = fc.oneof(
  fc.string(),
  fc.integer({ min: -1e9, max: 0 }),
  fc.double({ noNaN: false }),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 3 }),
  fc.boolean(),
);

test('500 generated invalid job specs are each answered 4xx problem+json naming a spec field; no job is made', async () => {
  const invalidSpec = fc.oneof(
    // one field of a valid spec replaced by a value of the wrong kind or range
    fc
      .record({ field: fc.constantFrom(...SPEC_FIELDS), value: junk })
      .map(({ field, value }) => ({ ...valid, [field]: value })),
    // an unknown field
    fc
      .record({ field: fc.string({ minLength: 1, maxLength: 8 }), value: junk })
      .filter(({ field }) => !SPEC_FIELDS.includes(field))
      .map(({ field, value }) => ({ ...valid, [field]: value })),
    // a target the model cannot meet, or no target
    fc
      .integer({ min: 10, max: 1e6 })
      .map((units) => ({ ...valid, target: { units } })),
    fc.constant({ ...valid, target: undefined }),
    // a front target the model cannot meet, or one the spec's target already is
    fc
      .integer({ min: 10, max: 1e6 })
      .map((units) => ({ ...valid, front: [{ units: 1 }, { units }] })),
    fc.constant({ ...valid, front: [valid.target] }),
  );
  // Keys of the same tenant in turn: each stays under the rate limit (100 requests a minute per key).
  const keys = [api, ...(await Promise.all(Array.from({ length: 9 }, () => service.client('acme'))))];
  let answered = 0;
  let sent = 0;
  await fc.assert(
    fc.asyncProperty(invalidSpec, async (spec) => {
      const r = await keys[sent++ % keys.length]!.request('POST', '/v1/jobs', { ...ids, spec });
      if (r.status === 202) {
        // A replacement that happens to be valid (say granularity 'layer' stays valid): not an invalid spec.
        await api.request('POST', `/v1/jobs/${r.json.id}/cancel`);
        return fc.pre(false);
      }
      answered++;
      assert.ok(r.status === 400 || r.status === 422, `${r.status} for ${JSON.stringify(spec)}`);
      assert.match(r.type, /^application\/problem\+json/);
      assert.match(r.json.detail, /^spec(\.|:)/, JSON.stringify(spec));
    }),
    { numRuns: 500, seed: 42 },
  );
  assert.ok(answered >= 450, `${answered} invalid specs answered`);
  // A valid one a coordinator had already started ends `cancelled` at its next step, not at once.
  const watcher = await service.client('acme'); // a key of its own: the others' rate limits stay for the tests after
  const statuses = async () =>
    ((await watcher.request('GET', '/v1/jobs?limit=500')).json.jobs as { status: string }[]).map(
      (j) => j.status,
    );
  const until = Date.now() + 60_000;
  while ((await statuses()).some((s) => s !== 'cancelled') && Date.now() < until)
    await new Promise((r) => setTimeout(r, 1000));
  assert.ok(
    (await statuses()).every((s) => s === 'cancelled'),
    `nothing but the cancelled valid ones: ${await statuses()}`,
  );
});

test('bad bodies, unknown ids and wrong content types are 4xx problem+json, never 5xx', async () => {
  for (const body of [
    [],
    'x',
    42,
    null,
    { ...ids },
    { ...ids, spec: valid, extra: 1 },
    { modelId: 'nope', datasetId: ids.datasetId, spec: valid },
  ])
    assert.equal((await api.request('POST', '/v1/jobs', body)).status, 400, JSON.stringify(body));
  const broken = await fetch(`${service.stack.apiUrl}/v1/jobs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${api.key}`, 'content-type': 'application/json' },
    body: '{"modelId": ',
  });
  assert.equal(broken.status, 400);
  assert.match(broken.headers.get('content-type') ?? '', /problem\+json/);
  const zero = '00000000-0000-4000-8000-000000000000';
  assertProblem(
    await api.request('POST', '/v1/jobs', { modelId: zero, datasetId: ids.datasetId, spec: valid }),
    422,
    /^modelId/,
  );
  assertProblem(
    await api.request('POST', '/v1/jobs', { modelId: ids.modelId, datasetId: zero, spec: valid }),
    422,
    /^datasetId/,
  );
  for (const path of [
    `/v1/jobs/${zero}`,
    `/v1/models/${zero}`,
    `/v1/datasets/${zero}`,
    `/v1/jobs/${zero}/generations`,
    `/v1/jobs/${zero}/report.json`,
    `/v1/jobs/${zero}/artifacts/model.onnx`,
    '/v1/nothing-here',
  ])
    assertProblem(await api.request('GET', path), 404, /./);
  assertProblem(await api.request('GET', '/v1/jobs/not-a-uuid'), 400, /^params\.id/);
  assertProblem(
    await api.request('POST', '/v1/jobs', { ...ids, spec: { ...valid, budget: 5 } }),
    422,
    /^spec\.budget: 5 is less than one population/,
  );
  assertProblem(await api.request('POST', `/v1/jobs/${zero}/cancel`), 404, /job/);
  assertProblem(await api.request('POST', '/v1/models', { name: 'x' }), 415, /multipart/);
  assertProblem(await api.request('GET', '/v1/jobs?limit=100000'), 400, /^querystring\.limit/);
  // PostgreSQL refuses NUL in text: it must never reach it.
  assertProblem(
    await api.request('GET', `/v1/jobs/${zero}/generations?strategy=evop%00`),
    400,
    /^querystring\.strategy/,
  );
});

test('bad uploads are refused naming the field, and leave no model or dataset behind', async () => {
  const dir = service.dir;
  const model = readFileSync(data.model);
  const truncated = join(dir, 'truncated.onnx');
  writeFileSync(truncated, model.subarray(0, model.length >> 1));
  const random = join(dir, 'random.onnx');
  writeFileSync(random, randomBytes(64 * 1024));
  const big = join(dir, 'big.onnx');
  writeFileSync(big, randomBytes(MAX_UPLOAD + 1024));
  for (const file of [truncated, random]) {
    const r = await api.upload('/v1/models', { name: 'bad' }, { model: [file], tokenizer: [data.tokenizer] });
    assertProblem(r, 422, /^model: /);
    assert.doesNotMatch(r.json.detail, /staging|artifacts|\/tmp\//, 'no server path in an error');
  }
  assertProblem(
    await api.upload('/v1/models', { name: 'big' }, { model: [big], tokenizer: [data.tokenizer] }),
    413,
    /over/,
  );
  assertProblem(
    await api.upload('/v1/models', {}, { model: [data.model], tokenizer: [data.tokenizer] }),
    422,
    /^name: /,
  );
  // Bodies the multipart parser cannot read: no boundary, a body cut off in a file.
  const raw = async (contentType: string, body: string) => {
    const r = await fetch(`${service.stack.apiUrl}/v1/models`, {
      method: 'POST',
      headers: { authorization: `Bearer ${api.key}`, 'content-type': contentType },
      body,
    });
    const json = (await r.json()) as { detail?: string };
    return { status: r.status, type: r.headers.get('content-type') ?? '', json };
  };
  assertProblem(await raw('multipart/form-data', 'abc'), 400, /^body: not a well-formed multipart/);
  const cut =
    '--B\r\ncontent-disposition: form-data; name="name"\r\n\r\nx\r\n--B\r\n' +
    'content-disposition: form-data; name="model"; filename="model.onnx"\r\n\r\nabcdef';
  assertProblem(await raw('multipart/form-data; boundary=B', cut), 400, /^body: not a well-formed multipart/);
  // A data file named as the tokenizer's staging folder is: the two are staged apart (another tenant's upload,
  // so that this test's own tenant keeps no model of its bad uploads).
  const named = join(dir, 'tokenizer');
  writeFileSync(named, 'not weights');
  const other = await service.client('staging');
  const files = { model: [data.model], data: [named], tokenizer: [data.tokenizer] };
  // (Not a 500 from the two colliding: refused because the model does not name that file.)
  assertProblem(
    await other.upload('/v1/models', { name: 'x' }, files),
    422,
    /^data: 'tokenizer' is not external data of the model/,
  );
  const uploads: [string, Record<string, string[]>][] = [
    ['/v1/models', { model: [data.model], tokenizer: [data.tokenizer] }],
    ['/v1/datasets', { file: [data.stories] }],
  ];
  for (const name of ['a\u0000b', 'tab\there'])
    for (const [route, files] of uploads)
      assertProblem(await api.upload(route, { name }, files), 422, /^name: control characters/);
  // Another model's tokenizer: more tokens than the model's embedding has rows.
  const bpe = JSON.parse(readFileSync(resolveDataFile('hf-zoo/tokenizer.json'), 'utf8'));
  for (let id = 512; id < 600; id++) bpe.model.vocab[`extra${id}`] = id;
  const wide = join(dir, 'tokenizer.json');
  writeFileSync(wide, JSON.stringify(bpe));
  assertProblem(
    await api.upload('/v1/models', { name: 'x' }, { model: [data.model], tokenizer: [wide] }),
    422,
    /^tokenizer: has 600 tokens but the model's embedding has 512/,
  );
  assertProblem(
    await api.upload('/v1/models', { name: 'x' }, { model: [data.model], tokenizer: [random] }),
    422,
    /^tokenizer: /,
  );
  assertProblem(
    await api.upload(
      '/v1/models',
      { name: 'x' },
      { model: [data.model], tokenizer: [data.tokenizer, data.tokenizer] },
    ),
    422,
    /^tokenizer: one tokenizer file is required, and at most a tokenizer_config\.json beside it/,
  );
  assertProblem(
    await api.upload('/v1/models', { name: 'x' }, { weights: [data.model] }),
    422,
    /^weights: unexpected/,
  );
  const empty = join(dir, 'empty.txt');
  writeFileSync(empty, '\n\n   \n');
  assertProblem(
    await api.upload('/v1/datasets', { name: 'empty' }, { file: [empty] }),
    422,
    /^file: .*no text/,
  );
  const badJsonl = join(dir, 'bad.jsonl');
  writeFileSync(badJsonl, '{"text": "fine"}\n{"txt": 1}\n');
  assertProblem(
    await api.upload('/v1/datasets', { name: 'bad' }, { file: [badJsonl] }),
    422,
    /^file: bad\.jsonl:2: /,
  );
  assertProblem(
    await api.upload('/v1/datasets', { name: 'x', format: 'csv' }, { file: [data.stories] }),
    422,
    /^format: /,
  );
  // A file name with folders in it: a plain name or nothing (busboy strips the folders; a hidden name is refused).
  const form = new FormData();
  form.set('name', 'traversal');
  form.append('file', new Blob(['Once upon a time.']), '../../.evil');
  assertProblem(await api.request('POST', '/v1/datasets', form), 422, /^file: file name/);
  assert.equal((await api.request('GET', '/v1/models')).json.models.length, 1);
  assert.equal((await api.request('GET', '/v1/datasets')).json.datasets.length, 1);
});

test('keys: missing or wrong → 401, stored only as sha256; another tenant gets 404 on every id; rate limit → 429', async () => {
  const job = await api.request('POST', '/v1/jobs', { ...ids, spec: valid });
  await api.request('POST', `/v1/jobs/${job.json.id}/cancel`);
  const other = await service.client('other');
  const routes: [string, string][] = [
    ['GET', `/v1/jobs/${job.json.id}`],
    ['GET', `/v1/jobs/${job.json.id}/generations`],
    ['GET', `/v1/jobs/${job.json.id}/events`],
    ['POST', `/v1/jobs/${job.json.id}/cancel`],
    ['GET', `/v1/jobs/${job.json.id}/report.json`],
    ['GET', `/v1/jobs/${job.json.id}/report.html`],
    ['GET', `/v1/jobs/${job.json.id}/artifacts/model.onnx`],
    ['GET', `/v1/models/${ids.modelId}`],
    ['GET', `/v1/datasets/${ids.datasetId}`],
  ];
  for (const [method, path] of routes) {
    assertProblem(await other.request(method, path), 404, /does not exist/);
    const anonymous = await fetch(`${service.stack.apiUrl}${path}`, { method });
    assert.equal(anonymous.status, 401, path);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer/);
  }
  const reused = await other.request('POST', '/v1/jobs', { ...ids, spec: valid });
  assertProblem(reused, 422, /^modelId/);
  const keys = await service.db.db.apiKey.findMany();
  const sha = createHash('sha256').update(api.key).digest('hex');
  assert.ok(
    keys.some((k) => k.hash === sha),
    'the key is found by its sha256',
  );
  assert.ok(
    keys.every((k) => k.hash !== api.key && !k.hash.includes(api.key.slice(9))),
    'no key is stored',
  );

  const limited = await service.client('limited');
  let status = 200;
  let retryAfter: string | null = null;
  for (let i = 0; i < 150 && status !== 429; i++) {
    const r = await limited.request('GET', '/healthz');
    const s = await limited.request('GET', '/v1/workers');
    status = s.status;
    retryAfter = s.headers.get('retry-after');
    if (r.status !== 200) throw new Error(`healthz ${r.status}`);
  }
  assert.equal(status, 429);
  assert.ok(Number(retryAfter) > 0, `Retry-After: ${retryAfter}`);
  assert.equal((await api.request('GET', '/v1/workers')).status, 200, 'other keys are not limited');
});

test('the artifact store: the same artifact uploaded by many workers at once is stored once; a wrong sha256 is refused', async () => {
  const bytes = randomBytes(100_000);
  const sha = createHash('sha256').update(bytes).digest('hex');
  const put = (name: string, body: Uint8Array) =>
    fetch(`${service.stack.apiUrl}/internal/artifacts/${name}`, {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${service.stack.serviceToken}`,
        'content-type': 'application/octet-stream',
      },
      body,
    });
  const statuses = await Promise.all(Array.from({ length: 8 }, () => put(sha, bytes).then((r) => r.status)));
  assert.deepEqual(
    statuses,
    statuses.map(() => 201),
  );
  assert.equal(await service.db.db.artifact.count({ where: { sha256: sha } }), 1);
  const wrong = await put('0'.repeat(64), bytes);
  assert.equal(wrong.status, 422);
  const back = await fetch(`${service.stack.apiUrl}/internal/artifacts/${sha}`, {
    headers: { authorization: `Bearer ${service.stack.serviceToken}` },
  });
  assert.deepEqual(Buffer.from(await back.arrayBuffer()), bytes);
});
