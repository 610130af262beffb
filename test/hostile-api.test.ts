import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Llama2cTokenizer, readCorpus } from '@evop/data';
import { discoverLayers, encodeModel, readModel, writeModel } from '@evop/onnx';
import type { ServiceClient } from './service-client.ts';
import {
  data,
  type Service,
  SMALL_SPEC,
  startService,
  uploadModel,
  uploadStories,
} from './service-fixture.ts';

const ANONYMOUS_LIMIT = 5;
let service: Service;
let api: ServiceClient;
let datasetId: string;

before(async () => {
  // No worker at first: a job stays running (waiting for its first task) while its event streams are probed.
  service = await startService(0, { EVOP_ANONYMOUS_RATE_LIMIT: String(ANONYMOUS_LIMIT) });
  api = await service.client('acme');
  datasetId = await uploadStories(api);
});
after(() => service?.close());

/** GET from a client address of our own (any of 127.0.0.0/8 reaches the loopback API): another client's IP. */
function getFrom(localAddress: string, path: string, key: string) {
  const url = new URL(path, service.stack.apiUrl);
  return new Promise<{ status: number; retryAfter?: string; detail?: string }>((resolve, reject) => {
    httpRequest(url, { localAddress, headers: { authorization: `Bearer ${key}` } }, (response) => {
      let body = '';
      response.on('data', (chunk) => {
        body += chunk;
      });
      response.on('end', () =>
        resolve({
          status: response.statusCode!,
          retryAfter: response.headers['retry-after'],
          detail: body.startsWith('{') ? JSON.parse(body).detail : undefined,
        }),
      );
    })
      .on('error', reject)
      .end();
  });
}

const metric = async (name: string) => {
  const text = await (
    await fetch(`${service.stack.apiUrl}/metrics`, {
      headers: { authorization: `Bearer ${service.stack.serviceToken}` },
    })
  ).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
};

/** Polls the open-stream gauge until it reads `count` (the API handles the streams' ends as they come in). */
async function streamsBackTo(count: number) {
  let open = await metric('evop_event_streams');
  for (let i = 0; i < 600 && open !== count; i++) {
    await new Promise((r) => setTimeout(r, 100));
    open = await metric('evop_event_streams');
  }
  assert.equal(open, count, 'every stream released its listener and timer');
}

test('requests without a valid key are limited per client IP before the key lookup; valid keys elsewhere are not', async () => {
  const statuses: number[] = [];
  let limited: Awaited<ReturnType<typeof getFrom>> | undefined;
  for (let i = 0; i < ANONYMOUS_LIMIT + 3; i++) {
    const r = await getFrom('127.0.0.2', '/v1/jobs', `evop_wrong_${i}`);
    statuses.push(r.status);
    if (r.status === 429) limited = r;
  }
  assert.deepEqual(statuses, [...Array(ANONYMOUS_LIMIT).fill(401), ...Array(3).fill(429)]);
  assert.ok(Number(limited!.retryAfter) > 0, `Retry-After: ${limited!.retryAfter}`);
  assert.match(limited!.detail!, /without a valid API key/);
  // No key at all counts the same; the address stays refused before any lookup, even with a valid key.
  assert.equal((await getFrom('127.0.0.2', '/v1/jobs', api.key)).status, 429);
  // Another client's valid key still works, and so does its own address.
  assert.equal((await getFrom('127.0.0.3', '/v1/jobs', api.key)).status, 200);
  assert.equal((await api.request('GET', '/v1/jobs')).status, 200);
  assert.equal((await getFrom('127.0.0.2', '/healthz', 'evop_wrong')).status, 200, '/healthz is exempt');
});

/** The fixture model with external data, one entry of its first external tensor set to `value`. */
function externalDataModel(dir: string, key: string, value: string) {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'model.onnx');
  writeModel(readModel(data.model).proto, path, { externalData: 'external' });
  const { proto } = readModel(path);
  const tensor = proto.graph.initializer.find((t) => t.externalData.length > 0)!;
  for (const t of proto.graph.initializer)
    for (const e of t.externalData) {
      if (e.key === 'location') e.value = 'model.onnx.data';
      if (t === tensor && e.key === key) e.value = value;
    }
  writeFileSync(path, encodeModel(proto));
  return { path, tensor: tensor.name };
}

test('an upload whose external-data offset or length is NaN or negative is answered 422 naming the tensor and the key', async () => {
  for (const [key, value] of [
    ['offset', 'NaN'],
    ['length', '-1'],
  ] as const) {
    const { path, tensor } = externalDataModel(join(service.dir, `bad-${key}`), key, value);
    const r = await api.upload(
      '/v1/models',
      { name: 'forged' },
      { model: [path], data: [`${path}.data`], tokenizer: [data.tokenizer] },
    );
    assert.equal(r.status, 422, JSON.stringify(r.json));
    assert.match(r.type, /^application\/problem\+json/);
    assert.match(
      r.json.detail,
      new RegExp(`^model: .*tensor '${tensor}' has external data ${key} '${value}'`),
    );
  }
});

test("no problem detail shows the server's paths", async () => {
  // The external data named by the model is not sent: the reader names the file it looked for in the staging area.
  const { path } = externalDataModel(join(service.dir, 'no-data'), 'offset', '0');
  const missing = await api.upload(
    '/v1/models',
    { name: 'no data' },
    { model: [path], tokenizer: [data.tokenizer] },
  );
  // The external data past the end of the file that was sent (a forged offset).
  const { path: beyond } = externalDataModel(join(service.dir, 'beyond'), 'offset', String(2 ** 40));
  const past = await api.upload(
    '/v1/models',
    { name: 'beyond' },
    { model: [beyond], data: [`${beyond}.data`], tokenizer: [data.tokenizer] },
  );
  for (const r of [missing, past]) {
    assert.equal(r.status, 422, JSON.stringify(r.json));
    assert.match(r.json.detail, /model\.onnx\.data/, 'the file is named');
    assert.doesNotMatch(r.json.detail, /\/[^\s'"]*\//, `no folder in: ${r.json.detail}`);
    for (const folder of [service.dir, process.cwd(), tmpRoot()])
      assert.ok(!r.json.detail.includes(folder), r.json.detail);
  }
});

const tmpRoot = () => service.dir.slice(0, service.dir.lastIndexOf('/'));

/** Opens an event stream and aborts it after `ms` (0: before the server has answered). */
async function abortedStream(jobId: string, ms: number, afterFirstEvent: boolean) {
  const controller = new AbortController();
  const response = fetch(`${service.stack.apiUrl}/v1/jobs/${jobId}/events`, {
    headers: { authorization: `Bearer ${api.key}` },
    signal: controller.signal,
  });
  if (!afterFirstEvent) setTimeout(() => controller.abort(), ms);
  try {
    const body = (await response).body!.getReader();
    if (afterFirstEvent) await body.read();
    controller.abort();
    await body.read().catch(() => {});
  } catch {
    // aborted before the answer
  }
}

let runningJob: string;

test('event streams release their timer and listener however they end: aborted at any moment, or at the job end', async () => {
  const modelId = await uploadModel(api, 'stories260K', data.model);
  const submitted = await api.request('POST', '/v1/jobs', { modelId, datasetId, spec: SMALL_SPEC });
  assert.equal(submitted.status, 202, JSON.stringify(submitted.json));
  runningJob = submitted.json.id;
  const baseline = await metric('evop_event_streams');
  assert.equal(baseline, 0);

  // 300 streams at once, aborted from 0 to 50 ms after they were opened (many before the API answers,
  // while it authenticates or looks the job up), and 30 after their first event.
  await Promise.all([
    ...Array.from({ length: 300 }, (_, i) => abortedStream(runningJob, i % 51, false)),
    ...Array.from({ length: 30 }, () => abortedStream(runningJob, 0, true)),
  ]);
  await streamsBackTo(baseline);

  // Streams that stay until the job ends: its final status ends them, and they are released.
  const cancel = await api.request('POST', '/v1/jobs', {
    modelId,
    datasetId,
    spec: { ...SMALL_SPEC, seed: 9 },
  });
  const id = cancel.json.id as string;
  const opened: Promise<{ event: string; data: unknown }[]>[] = [];
  for (let i = 0; i < 5; i++) opened.push(api.events(`/v1/jobs/${id}/events`));
  while ((await metric('evop_event_streams')) < 5) await new Promise((r) => setTimeout(r, 100));
  assert.equal((await api.request('POST', `/v1/jobs/${id}/cancel`)).status, 202);
  for (const events of await Promise.all(opened))
    assert.equal((events.at(-1)!.data as { status: string }).status, 'cancelled');
  await streamsBackTo(baseline);
});

const evopBin = fileURLToPath(new URL('../bin/evop.js', import.meta.resolve('@evop/cli')));

/**
 * The fixture model with the embedding row of one token of the corpus set to NaN: the layout's self-check (whose
 * token ids are 1 + 7919·t mod (vocab − 1), layout-check.ts) passes, and the windows holding the token meet the NaN,
 * as a model broken in part would.
 */
function nanModel(dir: string): string {
  const { proto } = readModel(data.model);
  const layout = discoverLayers(proto);
  const selfCheck = Array.from({ length: 8 }, (_, t) => 1 + ((t * 7919) % (layout.vocabSize - 1)));
  // The corpus's most frequent such token, so that every sample of windows meets it.
  const tokenizer = Llama2cTokenizer.fromFile(data.tokenizer);
  const counts = new Map<number, number>();
  for (const t of readCorpus(data.stories).flatMap((d) => tokenizer.encode(d)))
    if (!selfCheck.includes(t)) counts.set(t, (counts.get(t) ?? 0) + 1);
  const token = [...counts].reduce((a, b) => (b[1] > a[1] ? b : a))[0];
  const weight = proto.graph.initializer.find((t) => t.name === layout.embedding)!;
  const values = new Float32Array(Uint8Array.from(weight.rawData).buffer);
  values.fill(Number.NaN, token * layout.hiddenSize, (token + 1) * layout.hiddenSize);
  weight.rawData = new Uint8Array(values.buffer);
  mkdirSync(dir, { recursive: true });
  writeModel(proto, join(dir, 'model.onnx'));
  return join(dir, 'model.onnx');
}

const NOT_FINITE =
  /the model's (logits|hidden states) are not finite \(NaN\) on window \d+; the model cannot be scored/;

test('a model whose outputs are NaN: evop prune exits 2 and the service job fails with one sentence, not a schema dump', async () => {
  const path = nanModel(join(service.dir, 'nan'));
  const local = await promisify(execFile)(
    process.execPath,
    [
      evopBin,
      'prune',
      ...['--model', path, '--tokenizer', data.tokenizer, '--data', data.stories, '--remove', '2'],
      ...['--budget', '60', '--calibration', '8', '--held-out', '8', '--seq-len', '64', '--quiet'],
      ...['--out', join(service.dir, 'nan-out')],
    ],
    { env: { ...process.env, EVOP_PROVIDER: 'cpu' } },
  ).then(
    () => assert.fail('evop prune succeeded on a NaN model'),
    (err: { code: number; stderr: string }) => err,
  );
  assert.equal(local.code, 2, local.stderr);
  assert.match(local.stderr, NOT_FINITE);

  // The running job of the stream test goes first: cancelled, so that the worker takes this one.
  await api.request('POST', `/v1/jobs/${runningJob}/cancel`);
  await service.stack.addWorker();
  const modelId = (
    await api.upload('/v1/models', { name: 'nan' }, { model: [path], tokenizer: [data.tokenizer] })
  ).json.id as string;
  const submitted = await api.request('POST', '/v1/jobs', { modelId, datasetId, spec: SMALL_SPEC });
  const job = await api.waitFor(submitted.json.id, (j) => j.status === 'failed' || j.status === 'succeeded');
  assert.equal(job.status, 'failed');
  assert.match(String(job.error), new RegExp(`^\\w+ task failed: ${NOT_FINITE.source}$`));
});

test('server close ends the open event streams, and the connection of a request in flight once it is answered, instead of waiting for their clients', async () => {
  // No worker: the job stays running, its streams open.
  for (const worker of service.stack.processes.filter(
    (p) => p.role === 'worker' && p.child.exitCode === null,
  )) {
    worker.child.kill('SIGTERM');
    assert.equal(await worker.exited, 0);
  }
  const modelId = await uploadModel(api, 'stories260K', data.model);
  const submitted = await api.request('POST', '/v1/jobs', {
    modelId,
    datasetId,
    spec: { ...SMALL_SPEC, seed: 11 },
  });
  const streams = Array.from({ length: 3 }, () => api.events(`/v1/jobs/${submitted.json.id}/events`));
  while ((await metric('evop_event_streams')) < 3) await new Promise((r) => setTimeout(r, 100));
  // A request in flight when the close begins, on a keep-alive connection (as a coordinator's artifact fetch or a
  // slow upload is): the server has its headers (it answered 100 Continue), not yet its body.
  const agent = new Agent({ keepAlive: true });
  const body = JSON.stringify({ modelId });
  const inFlight = httpRequest(new URL('/v1/jobs', service.stack.apiUrl), {
    method: 'POST',
    agent,
    headers: {
      authorization: `Bearer ${api.key}`,
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      expect: '100-continue',
    },
  });
  const answered = new Promise<IncomingMessage>((resolve, reject) =>
    inFlight.on('response', resolve).on('error', reject),
  );
  await new Promise((resolve) => inFlight.once('continue', resolve));
  const apiProcess = service.stack.processes.find((p) => p.role === 'api')!;
  apiProcess.child.kill('SIGTERM');
  await Promise.all(streams);
  inFlight.end(body);
  const response = await answered;
  let detail = '';
  for await (const chunk of response) detail += chunk;
  assert.equal(response.statusCode, 400, detail);
  assert.match(JSON.parse(detail).detail, /datasetId/);
  assert.equal(response.headers.connection, 'close');
  assert.equal(await apiProcess.exited, 0);
  assert.ok(
    !apiProcess.tail.some((line) => line.includes('did not finish in time')),
    apiProcess.tail.join('\n'),
  );
  agent.destroy();
});
