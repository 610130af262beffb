import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { ServiceClient } from './service-client.ts';
import { data, type Service, startService, writeSparseExternal } from './service-fixture.ts';

let service: Service;
let api: ServiceClient;

before(async () => {
  service = await startService(0);
  api = await service.client('acme');
});
after(() => service?.close());

/** A corpus of `bytes` bytes: the TinyStories sample's paragraphs over and over. */
async function writeCorpus(path: string, bytes: number) {
  const { readFileSync } = await import('node:fs');
  const block = readFileSync(data.stories);
  const out = createWriteStream(path);
  for (let written = 0; written < bytes; written += block.length)
    if (!out.write(block)) await once(out, 'drain');
  out.end();
  await once(out, 'finish');
}

// Asks /healthz every 20 ms, whether or not the last answer came (a stalled server makes every request of the
// stall late, not one), from a process of its own (this one is busy sending the uploads); prints each answer's
// latency when told to stop.
const SAMPLER = `
const url = process.argv[1];
const pending = [];
const timer = setInterval(() => {
  const t = performance.now();
  pending.push(fetch(url).then((r) => r.arrayBuffer()).then(() => performance.now() - t));
}, 20);
process.on('SIGTERM', async () => {
  clearInterval(timer);
  process.stdout.write(JSON.stringify(await Promise.all(pending)));
});
`;

test('/healthz answers within 100 ms (95th percentile; a stall of a second or more fails it) while a 150 MB corpus and a 1 GB model upload', async (t) => {
  const corpus = join(service.dir, 'big-corpus.txt');
  await writeCorpus(corpus, 150 * 1024 ** 2);
  // stories260K's weights placed after a 1 GiB hole: a model of real size, valid, taking no disk until sent.
  const model = writeSparseExternal(data.model, join(service.dir, 'big-model'), 1024 ** 3);

  const sampler = spawn(process.execPath, ['-e', SAMPLER, `${service.stack.apiUrl}/healthz`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  sampler.stdout.on('data', (chunk) => {
    out += chunk;
  });
  await new Promise((r) => setTimeout(r, 500)); // a baseline before the uploads start
  const started = Date.now();
  const [dataset, uploaded] = await Promise.all([
    api.upload('/v1/datasets', { name: 'big' }, { file: [corpus] }),
    api.upload(
      '/v1/models',
      { name: 'big' },
      { model: [model], data: [`${model}.data`], tokenizer: [data.tokenizer] },
    ),
  ]);
  const seconds = (Date.now() - started) / 1000;
  sampler.kill('SIGTERM');
  await once(sampler, 'exit');
  assert.equal(dataset.status, 201, JSON.stringify(dataset.json));
  assert.equal(uploaded.status, 201, JSON.stringify(uploaded.json));
  assert.ok(dataset.json.documents > 100_000, 'the whole corpus was read');
  assert.ok(uploaded.json.bytes > 1024 ** 3);

  const latencies = (JSON.parse(out) as number[]).sort((a, b) => a - b);
  const p95 = latencies[Math.floor(latencies.length * 0.95)]!;
  const p99 = latencies[Math.floor(latencies.length * 0.99)]!;
  const max = latencies.at(-1)!;
  t.diagnostic(
    `uploads took ${seconds.toFixed(1)} s; /healthz answered ${latencies.length} times: median ` +
      `${latencies[latencies.length >> 1]!.toFixed(1)} ms, p95 ${p95.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${max.toFixed(1)} ms`,
  );
  assert.ok(latencies.length > 50, 'the sampler ran through the uploads');
  // Requests go out every 20 ms whatever happens, so a stalled event loop makes every request of the stall late:
  // a 1 s stall in an 18 s upload is over 5 % of them. The tail beyond is this 2-core machine shared with the
  // rest of the suite (p99 71 ms alone, 120 ms in CI).
  assert.ok(p95 < 100, `p95 ${p95.toFixed(1)} ms`);
});
