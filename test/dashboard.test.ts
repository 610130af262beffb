import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { resolveDataFile } from '@evop/config';
import { type Browser, chromium, type Page } from 'playwright-core';
import type { ServiceClient } from './service-client.ts';
import {
  data,
  runEvopPrune,
  type Service,
  startService,
  uploadDeep16,
  uploadFixtures,
} from './service-fixture.ts';

// Screenshots of every state, kept as test artefacts (gitignored).
const shots = fileURLToPath(new URL('./artifacts/', import.meta.url));
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

let service: Service;
let api: ServiceClient;
let browser: Browser;
let page: Page;
let ids: { modelId: string; datasetId: string };
const wikitext = resolveDataFile('wikitext-2-raw-test/wikitext-2-raw-v1-test.txt');
const consoleErrors: string[] = [];

before(async () => {
  mkdirSync(shots, { recursive: true });
  service = await startService(1);
  api = await service.client('acme');
  ids = await uploadFixtures(api);
  // Out of the TinyStories model's domain: a job evaluates on it besides its own dataset.
  assert.equal((await api.upload('/v1/datasets', { name: 'wikitext' }, { file: [wikitext] })).status, 201);
  browser = await chromium.launch({
    executablePath: process.env.EVOP_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(e.message));
});

after(async () => {
  await browser?.close();
  await service?.close();
});

async function signIn(key: string) {
  await page.goto(`${service.stack.apiUrl}/`);
  await page.fill('input[name=key]', key);
  await page.click('#sign-in button[type=submit]');
  await page.waitForSelector('h1:text("Jobs")');
}

test('a new tenant sees empty lists; a refused key is said so', async () => {
  await page.goto(`${service.stack.apiUrl}/`);
  await page.fill('input[name=key]', 'evop_not-a-key');
  await page.click('#sign-in button[type=submit]');
  await page.waitForSelector('text=That API key was refused.');
  await signIn((await service.client('newcomer')).key);
  await page.waitForSelector('text=No jobs yet');
  await page.screenshot({ path: join(shots, 'empty-jobs.png') });
  await page.click('nav a:text("Models")');
  await page.waitForSelector('text=No models yet');
  await page.click('nav a:text("Datasets")');
  await page.waitForSelector('text=No datasets yet');
  await page.click('nav a:text("Workers")');
  await page.waitForSelector('#workers td:text("worker-1")');
  await page.click('#sign-out');
  await page.waitForSelector('h1:text("Sign in")');
  assert.deepEqual(consoleErrors.splice(0), [
    'Failed to load resource: the server responded with a status of 401 (Unauthorized)',
  ]);
});

/** A speedup as the dashboard and the reports word it. */
const SPEEDUP =
  /^(×\d+\.\d+ \[\d+\.\d+, \d+\.\d+\], (faster|slower)|inconclusive: ratio \[\d+\.\d+, \d+\.\d+\] spans 1)$/;

test('submit a job with a front, watch its stage and chart while it runs, then see the final table and front', async () => {
  await signIn(api.key);
  await page.selectOption('select[name=datasetId]', { label: 'tinystories' });
  await page.fill('input[name=front]', '1,3');
  await page.selectOption('select[name=evalDatasetIds]', [{ label: 'wikitext' }]);
  await page.selectOption('select[name=granularity]', 'sublayer');
  for (const [name, value] of Object.entries({
    budget: 150,
    calibration: 8,
    heldOut: 8,
    seqLen: 64,
    seed: 5,
  }))
    await page.fill(`input[name=${name}]`, String(value));
  await page.click('#submit button[type=submit]');
  await page.waitForSelector('h1 #model-name');
  const jobUrl = page.url();
  assert.equal(await page.title(), 'evop: stories260K');
  assert.equal(await page.textContent('#model-name'), 'stories260K');
  const seen: number[] = [];
  const stages: string[] = [];
  for (;;) {
    const points = Number(await page.getAttribute('#chart', 'data-points'));
    if ((await page.$('#result')) !== null) break;
    // Read at once: the page is rendered again when the job ends.
    const stage = await page.$$eval('#status, #stage', (els) => els.map((e) => e.textContent).join(' '));
    if (stage !== stages.at(-1)) stages.push(stage);
    if (points > 0 && points !== seen.at(-1)) seen.push(points);
    if (seen.length === 2) await page.screenshot({ path: join(shots, 'job-running.png') });
    await page.waitForTimeout(100);
  }
  assert.ok(seen.length >= 2, `the chart grew while the job ran: ${seen.join(' → ')}`);
  // While the search runs the page says so, and which generation it is at: never 'queued'.
  const searching = stages.filter((s) =>
    /^running search \(evop, search 1 of 3\): generation \d+, \d+ of 150 evaluations$/.test(s),
  );
  assert.ok(searching.length >= 2, `stages seen: ${stages.join(' | ')}`);
  assert.ok(
    stages.slice(stages.indexOf(searching[0]!)).every((s) => !s.startsWith('queued')),
    `stages seen: ${stages.join(' | ')}`,
  );
  await page.waitForSelector('#result');
  const methods = await page.$$eval('#result tr td:first-child', (cells) => cells.map((c) => c.textContent));
  assert.deepEqual(methods, ['dense', 'evop']);
  const datasetColumns = await page.$$eval('#result th.dataset', (cells) => cells.map((c) => c.textContent));
  assert.deepEqual(datasetColumns, ['tinystories ppl (in domain)', 'wikitext ppl (out of domain)']);
  const perplexities = await page.$$eval('#result tr', (rows) =>
    rows.slice(1).map((r) => [...r.querySelectorAll('td')].slice(1, 4).map((c) => Number(c.textContent))),
  );
  for (const [overall, inDomain, outOfDomain] of perplexities) {
    assert.equal(inDomain, overall, 'one dataset: its held-out windows are the held-out set');
    assert.ok(outOfDomain! > 2 * inDomain!, `${outOfDomain} out of domain vs ${inDomain}`);
  }
  const pruned = await page.$$eval('#pruned tr', (rows) =>
    rows.slice(1).map((r) => [...r.querySelectorAll('td')].map((c) => c.textContent)),
  );
  assert.equal(pruned.length, 2);
  for (const [unit, module] of pruned)
    assert.match(`${unit} ${module}`, /^(attn|mlp)(\d) model\.layers\.\2\.(self_attn|mlp)$/);
  // The pruned model's speedup, prefill / decode: a ratio with its 95 % interval and a verdict, or no ratio claimed.
  const speedup = await page.$$eval(
    '#result tr',
    (rows) => rows[2]!.querySelector('td:nth-last-child(2)')!.textContent,
  );
  for (const phase of speedup!.split(' / ')) assert.match(phase, SPEEDUP);
  // The finished page fetches the stored generations after it shows the result: wait for the heatmap.
  await page.waitForSelector('#heat tr th:text("attn0")');
  const unitRows = await page.$$eval(
    '#heat tr',
    (rows) => rows.filter((r) => r.querySelector('td[title]')).length,
  );
  assert.equal(unitRows, 10, 'one heatmap row per sub-block');
  const legend = await page.textContent('#heat-legend');
  assert.match(legend!, /fraction of the population that prunes the unit.*0 %.*100 %/s);
  assert.ok(Number(await page.getAttribute('#chart', 'data-points')) >= seen.at(-1)!);
  await page.screenshot({ path: join(shots, 'job-succeeded.png'), fullPage: true });
  await page.click('nav a:text("Jobs")');
  await page.waitForSelector('#jobs .status.succeeded');
  await page.click('nav a:text("Models")');
  await page.click('#models a:text("stories260K")');
  await page.waitForSelector('#units td:text("mlp4")');
  const units = await page.$$eval('#units tr', (rows) =>
    rows.slice(1).map((r) => [...r.querySelectorAll('td')].slice(0, 2).map((c) => c.textContent)),
  );
  assert.deepEqual(units.at(-1), ['mlp4', 'model.layers.4.mlp'], 'units with their PyTorch modules');
  assert.deepEqual(consoleErrors.splice(0), [], 'no console errors');
  await frontResult(/#\/jobs\/(.+)$/.exec(jobUrl)![1]!);
});

/** The front of a finished job: in the dashboard (chart, table, a download per point), the API and report.html. */
async function frontResult(id: string) {
  await page.goto(`${service.stack.apiUrl}/ui/#/jobs/${id}`);
  await page.waitForSelector('#front tr td');
  const rows = await page.$$eval('#front tr', (trs) =>
    trs.slice(1).map((r) => [...r.querySelectorAll('td')].map((c) => c.textContent!.trim())),
  );
  assert.deepEqual(
    rows.map((r) => r[0]),
    ['1', '2 (target)', '3'],
  );
  for (const r of rows) for (const phase of r[5]!.split(' / ')) assert.match(phase, SPEEDUP);
  // The chart draws every point on each of its lines: perplexity overall and out of domain, prefill and decode.
  const drawn = await page.$eval('#front-chart canvas', (canvas) =>
    // biome-ignore lint/suspicious/noExplicitAny: Chart.js's global, in the page
    (globalThis as any).Chart.getChart(canvas).data.datasets.map((d: { data: unknown[] }) => d.data.length),
  );
  assert.deepEqual(drawn, [3, 3, 3, 3]);
  await (await page.$('#front-chart'))!.screenshot({ path: join(shots, 'job-front.png') });

  // One job, a result per point: each listed with its sha256, and the dashboard's download is those bytes.
  const { json } = await api.request('GET', `/v1/jobs/${id}/files`);
  const files = json.files as { name: string; sha256: string; url: string }[];
  assert.deepEqual(
    files.map((f) => f.name),
    ['model.onnx', 'report.json', 'report.html', 'front/1-units/model.onnx', 'front/3-units/model.onnx'],
  );
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.click('#front button[data-download-point="3"]'),
  ]);
  const bytes = readFileSync((await download.path())!);
  assert.equal(
    createHash('sha256').update(bytes).digest('hex'),
    files.find((f) => f.name === 'front/3-units/model.onnx')!.sha256,
  );
  const missing = await api.request('GET', `/v1/jobs/${id}/front/5/artifacts/model.onnx`);
  assert.equal(missing.status, 404);
  assert.match(missing.json.detail, /points at 1, 3, not 5/);

  // The service's report.html plots the same front.
  const report = await fetch(`${service.stack.apiUrl}/v1/jobs/${id}/report.html`, {
    headers: { authorization: `Bearer ${api.key}` },
  });
  await page.setContent(await report.text());
  const plotted = await page.$eval('#front', (canvas) =>
    // biome-ignore lint/suspicious/noExplicitAny: Chart.js's global, in the page
    (globalThis as any).Chart.getChart(canvas).data.datasets.map((d: { data: unknown[] }) => d.data.length),
  );
  assert.deepEqual(plotted, [3, 3, 3, 3]);
  assert.equal(await page.$$eval('#front-table tr', (trs) => trs.length), 4);
  await page.screenshot({ path: join(shots, 'report-front.png'), fullPage: true });
  assert.deepEqual(consoleErrors.splice(0), [], 'no console errors');
}

test('report.html of an evop prune run: the model by its name, the heatmap legend, every data set and task', async () => {
  const out = join(service.dir, 'report-run');
  await runEvopPrune(
    [
      ...['--model', data.model, '--tokenizer', data.tokenizer, '--data', data.stories],
      ...['--eval-data', wikitext, '--remove', '2', '--granularity', 'sublayer', '--budget', '150'],
      ...['--calibration', '8', '--held-out', '8', '--seq-len', '64', '--seed', '5', '--baselines'],
      ...['--tasks', 'arc-easy', '--task-limit', '20'],
    ],
    out,
  );
  await page.goto(`file://${join(out, 'report.html')}`);
  assert.equal(await page.title(), 'evop: stories260K-onnx-hfstyle');
  const columns = await page.$$eval('#comparison tr:first-child th', (cells) =>
    cells.map((c) => c.textContent),
  );
  assert.deepEqual(columns, [
    'method',
    'held-out ppl',
    'tinystories_val.txt ppl (in domain)',
    'wikitext-2-raw-v1-test.txt ppl (out of domain)',
    'params',
    'evaluations',
    'arc-easy acc',
    'mask',
  ]);
  const rows = await page.$$eval('#comparison tr', (trs) =>
    trs.slice(1).map((r) => [...r.querySelectorAll('td')].map((c) => c.textContent)),
  );
  assert.deepEqual(
    rows.map((r) => r[0]),
    ['dense', 'evop', 'shortgpt', 'blockpruner', 'evopress', 'random'],
  );
  for (const r of rows) assert.match(r[6]!, /^\d+\.\d ± \d+\.\d$/, 'every method has its zero-shot score');
  assert.match((await page.textContent('.legend'))!, /fraction of the population that prunes the unit/);
  assert.equal(await page.$$eval('#heatmap td[title]', (cells) => cells.length > 0), true);
  assert.equal(await page.$$eval('#pruned tr', (trs) => trs.length), 3);
  const latency = (await page.textContent('#latency'))!;
  assert.match(latency, /median \[95 % interval\]/);
  for (const phase of ['prefill (64 tokens)', 'decode (32 tokens)'])
    assert.match(
      latency,
      new RegExp(
        `${phase.replace(/[()]/g, '\\$&')}: dense .*; (${SPEEDUP.source.slice(1, -1)}) \\(\\d+ rounds`,
      ),
    );
  await page.screenshot({ path: join(shots, 'report.png'), fullPage: true });
});

test('a failed job shows its error, a cancelled one says so, and a lost connection is shown', async () => {
  const tiny = join(service.dir, 'tiny.txt');
  writeFileSync(tiny, 'Once upon a time.\n\nThe end.\n');
  const small = await api.upload('/v1/datasets', { name: 'tiny' }, { file: [tiny] });
  const spec = { target: { units: 2 }, calibration: 8, heldOut: 8, seqLen: 64 };
  const failing = await api.request('POST', '/v1/jobs', {
    modelId: ids.modelId,
    datasetId: small.json.id,
    spec,
  });
  await api.waitFor(failing.json.id, (j) => j.status === 'failed');
  await page.goto(`${service.stack.apiUrl}/ui/#/jobs/${failing.json.id}`);
  await page.waitForSelector('#job-error:has-text("data: the corpora give")');
  await page.screenshot({ path: join(shots, 'job-failed.png') });

  const long = await api.request('POST', '/v1/jobs', {
    modelId: await uploadDeep16(service, api),
    datasetId: ids.datasetId,
    spec: { ...spec, target: { units: 6 }, budget: 100_000 },
  });
  const id = long.json.id as string;
  await page.route('**/events', (route) => route.abort('connectionfailed'));
  await page.goto(`${service.stack.apiUrl}/ui/#/jobs/${id}`);
  await page.waitForSelector('#banner:has-text("Connection to the live updates lost")');
  await page.screenshot({ path: join(shots, 'connection-lost.png') });
  await page.unroute('**/events');
  await page.waitForSelector('#banner', { state: 'hidden', timeout: 30_000 });
  consoleErrors.splice(0); // the refused connections of the lost-connection state

  await page.click('#cancel');
  await page.waitForSelector('#job-cancelled', { timeout: 120_000 });
  await page.screenshot({ path: join(shots, 'job-cancelled.png') });
  await page.click('nav a:text("Jobs")');
  await page.waitForSelector('#jobs .status.cancelled');
  await page.waitForSelector('#jobs .status.failed');
  assert.deepEqual(consoleErrors.splice(0), [], 'no console errors');
});
